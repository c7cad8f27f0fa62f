"""Xuzhou (HySpex): TFDS builder, one example per pixel. Source, licence, citation: README.md.

``tfds build datasets/xuzhou`` and ``hsijax prepare xuzhou`` build the same dataset; the work is
done by `hsijax.data.builders.PublishedSceneBuilder` from the catalogue entry `hsijax.data.catalog.SCENES["xuzhou"]`.
"""

from hsijax.data.builders import PublishedSceneBuilder
from hsijax.data.catalog import SCENES


class Builder(PublishedSceneBuilder):
    """DatasetBuilder for xuzhou: features spectrum (float32, 436), label, row, col."""

    SPEC = SCENES["xuzhou"]
