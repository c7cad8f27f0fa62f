"""WHU-Hi-LongKou (Headwall Nano-Hyperspec, UAV): TFDS builder (see README.md)."""
