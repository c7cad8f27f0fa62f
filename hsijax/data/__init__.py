"""Data: from a file to batches. ``readers`` (file formats) -> ``scene`` (a scene in memory; the
embedded Indian Pines) -> ``storage`` (a scene as a TFDS dataset of pixels) with ``catalog`` and
``builders`` (the twelve published scenes' TFDS builders) -> ``loading`` (a scene by name or file,
prepared or imported when missing) -> ``pipeline`` (Grain batches padded to buckets).
``wavelengths`` holds the sensors' band centres. Imports only ``hsijax.errors``, ``files``,
``spectral``."""
