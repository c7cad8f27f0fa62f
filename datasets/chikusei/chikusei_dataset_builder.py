"""Chikusei (Headwall Hyperspec-VNIR-C): TFDS builder, one example per pixel. Source, licence, citation: README.md.

``tfds build datasets/chikusei`` and ``hsijax prepare chikusei`` build the same dataset; the work is
done by `hsijax.data.builders.PublishedSceneBuilder` from the catalogue entry `hsijax.data.catalog.SCENES["chikusei"]`.
"""

from hsijax.data.builders import PublishedSceneBuilder
from hsijax.data.catalog import SCENES


class Builder(PublishedSceneBuilder):
    """DatasetBuilder for chikusei: features spectrum (float32, 128), label, row, col."""

    SPEC = SCENES["chikusei"]
