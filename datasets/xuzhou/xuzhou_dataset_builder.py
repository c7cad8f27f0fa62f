"""Xuzhou (HySpex): TFDS builder, one example per pixel. Source, licence, citation: README.md.

``tfds build datasets/xuzhou`` and ``hsijax prepare xuzhou`` build the same dataset; the work is
done by `hsijax.published.PublishedSceneBuilder` from the catalogue entry `hsijax.catalog.SCENES["xuzhou"]`.
"""

from hsijax.catalog import SCENES
from hsijax.published import PublishedSceneBuilder


class Builder(PublishedSceneBuilder):
    """DatasetBuilder for xuzhou: features spectrum (float32, 436), label, row, col."""

    SPEC = SCENES["xuzhou"]
