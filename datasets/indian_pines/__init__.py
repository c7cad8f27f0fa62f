"""Indian Pines (AVIRIS, corrected): TFDS builder (see README.md)."""
