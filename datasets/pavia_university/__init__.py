"""Pavia University (ROSIS): TFDS builder (see README.md)."""
