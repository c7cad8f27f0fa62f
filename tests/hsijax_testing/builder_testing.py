"""`SceneBuilderTestCase`: TFDS's builder test contract, without TensorFlow.

``tfds.testing.DatasetBuilderTestCase`` derives from ``tf.test.TestCase`` and reads examples back
through ``tf.data``, so it cannot run where TensorFlow is not installed, and hsijax keeps
TensorFlow out of its dependencies. This class keeps the same contract: set ``DATASET_CLASS`` and
``SPLITS``; dummy data lives in ``dummy_data/`` beside the builder; the download manager is mocked
so that no network is used; then it prepares the dataset, checks every split's example count and
each example against the features, reloads the builder from disk and checks again. It reads with
``tfds.data_source`` (ArrayRecord), as hsijax itself does. On top of that it checks the
scene-specific parts: the manual directory, the download path (the official URLs, mocked), the
error that names the expected files, and the metadata.
"""

from __future__ import annotations

import inspect
import shutil
import tempfile
import unittest
from pathlib import Path
from unittest import mock

import numpy as np
import tensorflow_datasets as tfds

from hsijax.data.builders import PublishedSceneBuilder, builder_class
from hsijax.data.provenance import sha256_of
from hsijax.data.storage import load_dataset
from hsijax.errors import HsijaxError
from hsijax_testing.dummy_data import dummy_arrays


class SceneBuilderTestCase(unittest.TestCase):
    DATASET_CLASS = None  # a hsijax.data.builders.PublishedSceneBuilder subclass
    SPLITS: dict[str, int] = {}

    @classmethod
    def setUpClass(cls):
        if cls.DATASET_CLASS is None:
            raise unittest.SkipTest("abstract test case")
        cls.spec = cls.DATASET_CLASS.SPEC
        cls.dummy_data = Path(inspect.getfile(cls.DATASET_CLASS)).parent / "dummy_data"
        if not cls.dummy_data.is_dir():
            raise AssertionError(f"dummy data not found in {cls.dummy_data}")

    def setUp(self):
        self.tmp_dir = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, self.tmp_dir, ignore_errors=True)
        self.downloaded_urls: list[str] = []

    def _builder(self):
        return self.DATASET_CLASS(data_dir=str(self.tmp_dir / "data"), file_format="array_record")

    def _dummy_hashes(self) -> dict[str, str]:
        """The dummy files' SHA-256, recorded in place of the published files' (which the dummies are not)."""
        return {name: sha256_of(self.dummy_data / name) for name in self.spec.expected_files}

    def _prepare(self, manual_dir=None, recorded=None):
        builder = self._builder()
        config = tfds.download.DownloadConfig(manual_dir=str(manual_dir or self.tmp_dir / "no_manual_dir"))
        recorded = self._dummy_hashes() if recorded is None else recorded
        with mock.patch.object(tfds.download.DownloadManager, "download", self._fake_download), \
                mock.patch.object(tfds.download.DownloadManager, "download_and_extract", self._fake_extract), \
                mock.patch.object(PublishedSceneBuilder, "recorded_hashes", return_value=recorded), \
                mock.patch("hsijax.data.builders.server_reachable", return_value=True):
            builder.download_and_prepare(download_dir=str(self.tmp_dir / "downloads"), download_config=config)
        return builder

    def _fake_download(self, url_or_urls):
        """Like DownloadManager.download, but hands back the dummy files named like the published ones."""
        urls = url_or_urls if isinstance(url_or_urls, dict) else {"file": url_or_urls}
        by_url = {f.url: f.filename for f in self.spec.files}
        self.downloaded_urls.extend(urls.values())
        result = {key: self.dummy_data / by_url[url] for key, url in urls.items()}
        return result if isinstance(url_or_urls, dict) else result["file"]

    def _fake_extract(self, url):
        """Like download_and_extract of the scene's archive: a folder holding archive_dir/<files>."""
        self.downloaded_urls.append(url)
        folder = self.tmp_dir / "extracted" / self.spec.archive_dir
        folder.mkdir(parents=True, exist_ok=True)
        for name in self.spec.expected_files:
            shutil.copy(self.dummy_data / name, folder / name)
        return self.tmp_dir / "extracted"

    def test_download_and_prepare_from_manual_dir(self):
        builder = self._prepare(manual_dir=self.dummy_data)
        self.assertEqual(self.downloaded_urls, [])
        self._check_prepared(builder)
        self._check_prepared(self._builder())  # reloaded from disk: same counts, same examples

    def test_download_and_prepare_from_official_download(self):
        if not self.spec.downloadable:  # manual only: nothing is fetched, the error says what to do
            with self.assertRaisesRegex(HsijaxError, "no public download address"):
                self._prepare()
            self.assertEqual(self.downloaded_urls, [])
            return
        builder = self._prepare()
        expected = [self.spec.archive_url] if self.spec.archive_url else [f.url for f in self.spec.files]
        self.assertEqual(sorted(self.downloaded_urls), sorted(expected))
        self._check_prepared(builder)

    def test_a_file_unlike_its_recorded_hash_is_refused(self):
        first = self.spec.expected_files[0]
        with self.assertRaisesRegex(HsijaxError, f"differs from the one recorded for {first}"):
            self._prepare(manual_dir=self.dummy_data, recorded={**self._dummy_hashes(), first: "0" * 64})
        self.assertFalse((self.tmp_dir / "data" / self.spec.name / "1.0.0" / "dataset_info.json").exists())

    def test_the_builder_is_what_prepare_runs(self):
        self.assertIs(builder_class(self.spec.name), self.DATASET_CLASS)
        self.assertEqual(self.DATASET_CLASS.__module__.split(".")[0], "hsijax_datasets")
        recorded = PublishedSceneBuilder.recorded_hashes.__func__(self.DATASET_CLASS)  # its checksums.tsv
        checksums = Path(inspect.getfile(self.DATASET_CLASS)).parent / "checksums.tsv"
        listed = [line.split("\t") for line in checksums.read_text().splitlines() if line and not line.startswith("#")]
        self.assertEqual(recorded, {row[3]: row[2] for row in listed})

    def test_missing_files_name_the_expected_files(self):
        empty = self.tmp_dir / "empty_manual_dir"
        empty.mkdir()
        offline = OSError("offline")
        with mock.patch("hsijax.data.builders.server_reachable", return_value=True), \
                mock.patch.object(tfds.download.DownloadManager, "download", side_effect=offline), \
                mock.patch.object(tfds.download.DownloadManager, "download_and_extract", side_effect=offline), \
                self.assertRaises(HsijaxError) as caught:
            self._builder().download_and_prepare(
                download_dir=str(self.tmp_dir / "downloads"),
                download_config=tfds.download.DownloadConfig(manual_dir=str(empty)),
            )
        for name in self.spec.expected_files:
            self.assertIn(name, str(caught.exception))

    def _check_prepared(self, builder):
        for split, count in self.SPLITS.items():
            self.assertEqual(builder.info.splits[split].num_examples, count)
        self.assertEqual(builder.info.splits.total_num_examples, sum(self.SPLITS.values()))
        dataset = load_dataset(Path(builder.data_dir))
        meta = dataset.metadata
        self.assertEqual(len(dataset.source), meta["height"] * meta["width"])
        self.assertEqual(meta["bands"], self.spec.bands)
        self.assertEqual(meta["class_names"], list(self.spec.class_names))
        self.assertEqual(meta["wavelengths_nm"] is None, self.spec.wavelengths_nm is None)
        self.assertEqual(meta["import_options"], {"catalogue": self.spec.name})
        hashes = {Path(f["path"]).name: f["sha256"] for f in meta["source_files"]}
        self.assertEqual(set(hashes), set(self.spec.expected_files))
        self.assertEqual({name: hashes[name] for name in hashes}, self._dummy_hashes())
        self._check_examples(dataset, meta)

    def _check_examples(self, dataset, meta):
        """Every pixel in order, and exactly the values the dummy files hold (orientation included)."""
        cube, label_maps = dummy_arrays(self.spec)
        labels = sum(label_maps) if label_maps else np.zeros(cube.shape[:2], int)
        self.assertEqual((meta["height"], meta["width"]), cube.shape[:2])
        for index in range(len(dataset.source)):
            example = dataset.source[index]
            self.assertEqual(divmod(index, meta["width"]), (example["row"], example["col"]))
            self.assertEqual(example["spectrum"].shape, (self.spec.bands,))
            self.assertEqual(example["spectrum"].dtype, np.float32)
            row, col = divmod(index, meta["width"])
            np.testing.assert_array_equal(example["spectrum"], cube[row, col].astype(np.float32))
            self.assertEqual(example["label"], labels[row, col])
