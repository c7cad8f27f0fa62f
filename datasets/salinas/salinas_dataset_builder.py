"""Salinas Valley (AVIRIS, corrected): TFDS builder, one example per pixel. Source, licence, citation: README.md.

``tfds build datasets/salinas`` and ``hsijax prepare salinas`` build the same dataset; the work is
done by `hsijax.data.builders.PublishedSceneBuilder` from the catalogue entry `hsijax.data.catalog.SCENES["salinas"]`.
"""

from hsijax.data.builders import PublishedSceneBuilder
from hsijax.data.catalog import SCENES


class Builder(PublishedSceneBuilder):
    """DatasetBuilder for salinas: features spectrum (float32, 204), label, row, col."""

    SPEC = SCENES["salinas"]
