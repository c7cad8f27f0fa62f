"""Chikusei (Headwall Hyperspec-VNIR-C): TFDS builder, one example per pixel. Source, licence, citation: README.md.

``tfds build datasets/chikusei`` and ``hsijax prepare chikusei`` build the same dataset; the work is
done by `hsijax.published.PublishedSceneBuilder` from the catalogue entry `hsijax.catalog.SCENES["chikusei"]`.
"""

from hsijax.catalog import SCENES
from hsijax.published import PublishedSceneBuilder


class Builder(PublishedSceneBuilder):
    """DatasetBuilder for chikusei: features spectrum (float32, 128), label, row, col."""

    SPEC = SCENES["chikusei"]
