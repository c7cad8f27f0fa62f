"""Xuzhou (HySpex): TFDS builder (see README.md)."""
