"""Botswana, Okavango Delta (EO-1 Hyperion): TFDS builder (see README.md)."""
