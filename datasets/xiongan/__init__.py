"""Xiong'an New Area, Matiwan Village (AMMIS VNIR): TFDS builder (see README.md)."""
