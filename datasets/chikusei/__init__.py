"""Chikusei (Headwall Hyperspec-VNIR-C): TFDS builder (see README.md)."""
