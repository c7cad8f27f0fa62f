"""Washington DC Mall (HYDICE): TFDS builder, one example per pixel. Source, licence, citation: README.md.

``tfds build datasets/washington_dc`` and ``hsijax prepare washington_dc`` build the same dataset; the work is
done by `hsijax.data.builders.PublishedSceneBuilder` from the catalogue entry `hsijax.data.catalog.SCENES["washington_dc"]`.
"""

from hsijax.data.builders import PublishedSceneBuilder
from hsijax.data.catalog import SCENES


class Builder(PublishedSceneBuilder):
    """DatasetBuilder for washington_dc: features spectrum (float32, 191), label, row, col."""

    SPEC = SCENES["washington_dc"]
