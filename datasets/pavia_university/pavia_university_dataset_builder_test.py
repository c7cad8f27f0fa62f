"""pavia_university builder test over dummy_data/ (small files in the published files' format)."""

from hsijax.dummy_data import DUMMY_HEIGHT, DUMMY_WIDTH
from hsijax import testing

from . import pavia_university_dataset_builder


class PaviaUniversityTest(testing.SceneBuilderTestCase):
    DATASET_CLASS = pavia_university_dataset_builder.Builder
    SPLITS = {"train": DUMMY_HEIGHT * DUMMY_WIDTH}
