"""Pavia University (ROSIS): TFDS builder, one example per pixel. Source, licence, citation: README.md.

``tfds build datasets/pavia_university`` and ``hsijax prepare pavia_university`` build the same dataset; the work is
done by `hsijax.published.PublishedSceneBuilder` from the catalogue entry `hsijax.catalog.SCENES["pavia_university"]`.
"""

from hsijax.catalog import SCENES
from hsijax.published import PublishedSceneBuilder


class Builder(PublishedSceneBuilder):
    """DatasetBuilder for pavia_university: features spectrum (float32, 103), label, row, col."""

    SPEC = SCENES["pavia_university"]
