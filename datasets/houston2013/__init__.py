"""Houston 2013, IEEE GRSS Data Fusion Contest (CASI): TFDS builder (see README.md)."""
