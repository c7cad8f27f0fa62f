"""Kennedy Space Center (AVIRIS): TFDS builder (see README.md)."""
