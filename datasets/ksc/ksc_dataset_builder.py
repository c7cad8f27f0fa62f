"""Kennedy Space Center (AVIRIS): TFDS builder, one example per pixel. Source, licence, citation: README.md.

``tfds build datasets/ksc`` and ``hsijax prepare ksc`` build the same dataset; the work is
done by `hsijax.data.builders.PublishedSceneBuilder` from the catalogue entry `hsijax.data.catalog.SCENES["ksc"]`.
"""

from hsijax.data.builders import PublishedSceneBuilder
from hsijax.data.catalog import SCENES


class Builder(PublishedSceneBuilder):
    """DatasetBuilder for ksc: features spectrum (float32, 176), label, row, col."""

    SPEC = SCENES["ksc"]
