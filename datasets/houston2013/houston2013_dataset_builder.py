"""Houston 2013, IEEE GRSS Data Fusion Contest (CASI): TFDS builder, one example per pixel. Source, licence, citation: README.md.

``tfds build datasets/houston2013`` and ``hsijax prepare houston2013`` build the same dataset; the work is
done by `hsijax.published.PublishedSceneBuilder` from the catalogue entry `hsijax.catalog.SCENES["houston2013"]`.
"""

from hsijax.catalog import SCENES
from hsijax.published import PublishedSceneBuilder


class Builder(PublishedSceneBuilder):
    """DatasetBuilder for houston2013: features spectrum (float32, 144), label, row, col."""

    SPEC = SCENES["houston2013"]
