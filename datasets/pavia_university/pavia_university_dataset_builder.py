"""Pavia University (ROSIS): TFDS builder, one example per pixel. Source, licence, citation: README.md.

``tfds build datasets/pavia_university`` and ``hsijax prepare pavia_university`` build the same dataset; the work is
done by `hsijax.data.builders.PublishedSceneBuilder` from the catalogue entry `hsijax.data.catalog.SCENES["pavia_university"]`.
"""

from hsijax.data.builders import PublishedSceneBuilder
from hsijax.data.catalog import SCENES


class Builder(PublishedSceneBuilder):
    """DatasetBuilder for pavia_university: features spectrum (float32, 103), label, row, col."""

    SPEC = SCENES["pavia_university"]
