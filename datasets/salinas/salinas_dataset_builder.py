"""Salinas Valley (AVIRIS, corrected): TFDS builder, one example per pixel. Source, licence, citation: README.md.

``tfds build datasets/salinas`` and ``hsijax prepare salinas`` build the same dataset; the work is
done by `hsijax.published.PublishedSceneBuilder` from the catalogue entry `hsijax.catalog.SCENES["salinas"]`.
"""

from hsijax.catalog import SCENES
from hsijax.published import PublishedSceneBuilder


class Builder(PublishedSceneBuilder):
    """DatasetBuilder for salinas: features spectrum (float32, 204), label, row, col."""

    SPEC = SCENES["salinas"]
