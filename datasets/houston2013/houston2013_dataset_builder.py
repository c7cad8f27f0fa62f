"""Houston 2013, IEEE GRSS Data Fusion Contest (CASI): TFDS builder, one example per pixel. Source, licence, citation: README.md.

``tfds build datasets/houston2013`` and ``hsijax prepare houston2013`` build the same dataset; the work is
done by `hsijax.data.builders.PublishedSceneBuilder` from the catalogue entry `hsijax.data.catalog.SCENES["houston2013"]`.
"""

from hsijax.data.builders import PublishedSceneBuilder
from hsijax.data.catalog import SCENES


class Builder(PublishedSceneBuilder):
    """DatasetBuilder for houston2013: features spectrum (float32, 144), label, row, col."""

    SPEC = SCENES["houston2013"]
