"""botswana builder test over dummy_data/ (small files in the published files' format)."""

from hsijax_testing import builder_testing as testing
from hsijax_testing.dummy_data import DUMMY_HEIGHT, DUMMY_WIDTH

from hsijax_datasets.botswana import botswana_dataset_builder


class BotswanaTest(testing.SceneBuilderTestCase):
    DATASET_CLASS = botswana_dataset_builder.Builder
    SPLITS = {"train": DUMMY_HEIGHT * DUMMY_WIDTH}
