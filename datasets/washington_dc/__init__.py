"""Washington DC Mall (HYDICE): TFDS builder (see README.md)."""
