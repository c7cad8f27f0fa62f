"""Xiong'an New Area, Matiwan Village (AMMIS VNIR): TFDS builder, one example per pixel. Source, licence, citation: README.md.

``tfds build datasets/xiongan`` and ``hsijax prepare xiongan`` build the same dataset; the work is
done by `hsijax.data.builders.PublishedSceneBuilder` from the catalogue entry `hsijax.data.catalog.SCENES["xiongan"]`.
"""

from hsijax.data.builders import PublishedSceneBuilder
from hsijax.data.catalog import SCENES


class Builder(PublishedSceneBuilder):
    """DatasetBuilder for xiongan: features spectrum (float32, 256), label, row, col."""

    SPEC = SCENES["xiongan"]
