"""whu_hi_longkou builder test over dummy_data/ (small files in the published files' format)."""

from hsijax_testing import builder_testing as testing
from hsijax_testing.dummy_data import DUMMY_HEIGHT, DUMMY_WIDTH

from hsijax_datasets.whu_hi_longkou import whu_hi_longkou_dataset_builder


class WhuHiLongkouTest(testing.SceneBuilderTestCase):
    DATASET_CLASS = whu_hi_longkou_dataset_builder.Builder
    SPLITS = {"train": DUMMY_HEIGHT * DUMMY_WIDTH}
