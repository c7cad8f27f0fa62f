"""Botswana, Okavango Delta (EO-1 Hyperion): TFDS builder, one example per pixel. Source, licence, citation: README.md.

``tfds build datasets/botswana`` and ``hsijax prepare botswana`` build the same dataset; the work is
done by `hsijax.published.PublishedSceneBuilder` from the catalogue entry `hsijax.catalog.SCENES["botswana"]`.
"""

from hsijax.catalog import SCENES
from hsijax.published import PublishedSceneBuilder


class Builder(PublishedSceneBuilder):
    """DatasetBuilder for botswana: features spectrum (float32, 145), label, row, col."""

    SPEC = SCENES["botswana"]
