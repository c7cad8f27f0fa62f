"""Kennedy Space Center (AVIRIS): TFDS builder, one example per pixel. Source, licence, citation: README.md.

``tfds build datasets/ksc`` and ``hsijax prepare ksc`` build the same dataset; the work is
done by `hsijax.published.PublishedSceneBuilder` from the catalogue entry `hsijax.catalog.SCENES["ksc"]`.
"""

from hsijax.catalog import SCENES
from hsijax.published import PublishedSceneBuilder


class Builder(PublishedSceneBuilder):
    """DatasetBuilder for ksc: features spectrum (float32, 176), label, row, col."""

    SPEC = SCENES["ksc"]
