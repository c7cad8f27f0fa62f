"""Salinas Valley (AVIRIS, corrected): TFDS builder (see README.md)."""
