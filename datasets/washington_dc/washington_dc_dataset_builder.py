"""Washington DC Mall (HYDICE): TFDS builder, one example per pixel. Source, licence, citation: README.md.

``tfds build datasets/washington_dc`` and ``hsijax prepare washington_dc`` build the same dataset; the work is
done by `hsijax.published.PublishedSceneBuilder` from the catalogue entry `hsijax.catalog.SCENES["washington_dc"]`.
"""

from hsijax.catalog import SCENES
from hsijax.published import PublishedSceneBuilder


class Builder(PublishedSceneBuilder):
    """DatasetBuilder for washington_dc: features spectrum (float32, 191), label, row, col."""

    SPEC = SCENES["washington_dc"]
