"""WHU-Hi-HanChuan (Headwall Nano-Hyperspec, UAV): TFDS builder, one example per pixel. Source, licence, citation: README.md.

``tfds build datasets/whu_hi_hanchuan`` and ``hsijax prepare whu_hi_hanchuan`` build the same dataset; the work is
done by `hsijax.data.builders.PublishedSceneBuilder` from the catalogue entry `hsijax.data.catalog.SCENES["whu_hi_hanchuan"]`.
"""

from hsijax.data.builders import PublishedSceneBuilder
from hsijax.data.catalog import SCENES


class Builder(PublishedSceneBuilder):
    """DatasetBuilder for whu_hi_hanchuan: features spectrum (float32, 274), label, row, col."""

    SPEC = SCENES["whu_hi_hanchuan"]
