"""Xiong'an New Area, Matiwan Village (AMMIS VNIR): TFDS builder, one example per pixel. Source, licence, citation: README.md.

``tfds build datasets/xiongan`` and ``hsijax prepare xiongan`` build the same dataset; the work is
done by `hsijax.published.PublishedSceneBuilder` from the catalogue entry `hsijax.catalog.SCENES["xiongan"]`.
"""

from hsijax.catalog import SCENES
from hsijax.published import PublishedSceneBuilder


class Builder(PublishedSceneBuilder):
    """DatasetBuilder for xiongan: features spectrum (float32, 256), label, row, col."""

    SPEC = SCENES["xiongan"]
