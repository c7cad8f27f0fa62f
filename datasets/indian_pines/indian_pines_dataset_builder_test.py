"""indian_pines builder test over dummy_data/ (small files in the published files' format)."""

from unittest import mock

import tensorflow_datasets as tfds
from hsijax_testing import builder_testing as testing
from hsijax_testing.dummy_data import DUMMY_HEIGHT, DUMMY_WIDTH

from hsijax_datasets.indian_pines import indian_pines_dataset_builder


class IndianPinesTest(testing.SceneBuilderTestCase):
    DATASET_CLASS = indian_pines_dataset_builder.Builder
    SPLITS = {"train": DUMMY_HEIGHT * DUMMY_WIDTH}

    def test_missing_files_name_the_expected_files(self):
        """Indian Pines instead falls back to the tensorly wheel: the whole real scene."""
        empty = self.tmp_dir / "empty_manual_dir"
        empty.mkdir()
        builder = self._builder()
        with mock.patch.object(tfds.download.DownloadManager, "download", side_effect=OSError("offline")):
            builder.download_and_prepare(
                download_dir=str(self.tmp_dir / "downloads"),
                download_config=tfds.download.DownloadConfig(manual_dir=str(empty)),
            )
        self.assertEqual(builder.info.splits["train"].num_examples, 145 * 145)
        meta = builder.info.metadata
        self.assertEqual((meta["height"], meta["width"], meta["bands"]), (145, 145, 200))
        self.assertIn("tensorly", meta["source"])

