"""WHU-Hi-HanChuan (Headwall Nano-Hyperspec, UAV): TFDS builder (see README.md)."""
