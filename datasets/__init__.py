"""The TFDS builders of the catalogued scenes, one folder each, installed with hsijax as `hsijax_datasets`.

``hsijax prepare NAME`` runs ``hsijax_datasets.NAME.NAME_dataset_builder.Builder``, the class
``tfds build datasets/NAME`` runs; its ``checksums.tsv`` beside it is what downloads and manual
files are checked against (`hsijax.data.builders`).
"""
