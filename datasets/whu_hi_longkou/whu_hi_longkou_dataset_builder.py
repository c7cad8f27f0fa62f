"""WHU-Hi-LongKou (Headwall Nano-Hyperspec, UAV): TFDS builder, one example per pixel. Source, licence, citation: README.md.

``tfds build datasets/whu_hi_longkou`` and ``hsijax prepare whu_hi_longkou`` build the same dataset; the work is
done by `hsijax.published.PublishedSceneBuilder` from the catalogue entry `hsijax.catalog.SCENES["whu_hi_longkou"]`.
"""

from hsijax.catalog import SCENES
from hsijax.published import PublishedSceneBuilder


class Builder(PublishedSceneBuilder):
    """DatasetBuilder for whu_hi_longkou: features spectrum (float32, 270), label, row, col."""

    SPEC = SCENES["whu_hi_longkou"]
