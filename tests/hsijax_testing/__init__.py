"""Test support shared by tests/ and the TFDS builder tests in datasets/: small files in published
formats (`writers`, `dummy_data`) and the builder test case (`builder_testing`). Not part of the
hsijax package: pytest puts ``tests/`` on the import path (pyproject.toml, ``pythonpath``)."""
