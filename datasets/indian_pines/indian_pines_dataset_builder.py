"""Indian Pines (AVIRIS, corrected): TFDS builder, one example per pixel. Source, licence, citation: README.md.

``tfds build datasets/indian_pines`` and ``hsijax prepare indian_pines`` build the same dataset; the work is
done by `hsijax.data.builders.IndianPinesBuilder` from the catalogue entry `hsijax.data.catalog.SCENES["indian_pines"]`.
"""

from hsijax.data.builders import IndianPinesBuilder
from hsijax.data.catalog import SCENES


class Builder(IndianPinesBuilder):
    """DatasetBuilder for indian_pines: features spectrum (float32, 200), label, row, col."""

    SPEC = SCENES["indian_pines"]
