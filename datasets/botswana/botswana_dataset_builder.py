"""Botswana, Okavango Delta (EO-1 Hyperion): TFDS builder, one example per pixel. Source, licence, citation: README.md.

``tfds build datasets/botswana`` and ``hsijax prepare botswana`` build the same dataset; the work is
done by `hsijax.data.builders.PublishedSceneBuilder` from the catalogue entry `hsijax.data.catalog.SCENES["botswana"]`.
"""

from hsijax.data.builders import PublishedSceneBuilder
from hsijax.data.catalog import SCENES


class Builder(PublishedSceneBuilder):
    """DatasetBuilder for botswana: features spectrum (float32, 145), label, row, col."""

    SPEC = SCENES["botswana"]
