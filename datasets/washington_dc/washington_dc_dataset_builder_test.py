"""washington_dc builder test over dummy_data/ (small files in the published files' format)."""

from hsijax_testing import builder_testing as testing
from hsijax_testing.dummy_data import DUMMY_HEIGHT, DUMMY_WIDTH

from hsijax_datasets.washington_dc import washington_dc_dataset_builder


class WashingtonDcTest(testing.SceneBuilderTestCase):
    DATASET_CLASS = washington_dc_dataset_builder.Builder
    SPLITS = {"train": DUMMY_HEIGHT * DUMMY_WIDTH}
