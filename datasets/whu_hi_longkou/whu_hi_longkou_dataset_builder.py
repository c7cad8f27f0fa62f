"""WHU-Hi-LongKou (Headwall Nano-Hyperspec, UAV): TFDS builder, one example per pixel. Source, licence, citation: README.md.

``tfds build datasets/whu_hi_longkou`` and ``hsijax prepare whu_hi_longkou`` build the same dataset; the work is
done by `hsijax.data.builders.PublishedSceneBuilder` from the catalogue entry `hsijax.data.catalog.SCENES["whu_hi_longkou"]`.
"""

from hsijax.data.builders import PublishedSceneBuilder
from hsijax.data.catalog import SCENES


class Builder(PublishedSceneBuilder):
    """DatasetBuilder for whu_hi_longkou: features spectrum (float32, 270), label, row, col."""

    SPEC = SCENES["whu_hi_longkou"]
