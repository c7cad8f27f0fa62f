"""The scene catalogue against itself and against the real published files in ../shared/data."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from hsijax.data.builders import _merge_labels, builder_class
from hsijax.data.catalog import SCENES
from hsijax.data.readers import read_labels
from hsijax.data.scene import load_indian_pines


@pytest.mark.parametrize("name", sorted(SCENES))
def test_each_entry_is_consistent(name):
    spec = SCENES[name]
    assert spec.name == name and len(SCENES) == 12
    assert spec.wavelengths_nm is None or len(spec.wavelengths_nm) == spec.bands
    assert len(spec.class_names) == len(set(spec.class_names))
    assert (spec.labelled_pixels > 0) == bool(spec.class_names) == bool(spec.label_files)
    assert spec.downloadable or "Manual download" in spec.notes
    for file in spec.files:
        assert file.fmt in ("mat_v5", "mat_v73", "tif", "envi")
        assert (file.key is not None) == file.fmt.startswith("mat")
    for name_ in spec.expected_files:
        assert name_ in spec.manual_instructions()
    assert builder_class(name).MANUAL_DOWNLOAD_INSTRUCTIONS == spec.manual_instructions()


def test_indian_pines_entry_matches_the_embedded_scene():
    scene, spec = load_indian_pines(), SCENES["indian_pines"]
    assert scene.cube.shape == (spec.height, spec.width, spec.bands)
    assert int((scene.labels > 0).sum()) == spec.labelled_pixels
    assert scene.labels.max() == len(spec.class_names)
    np.testing.assert_allclose(scene.wavelengths_nm, spec.wavelengths_nm)


# Published ground-truth files in ../shared/data, read the way each builder reads them.
REAL_GROUND_TRUTHS = [
    ("indian_pines", "IndianPines/Indian_pines_gt.mat"),
    ("pavia_university", "PaviaU/PaviaU_gt.mat"),
    ("salinas", "Salinas/Salinas_gt.mat"),
    ("ksc", "KSC/KSC_gt.mat"),
]


@pytest.mark.parametrize("name, path", REAL_GROUND_TRUTHS)
def test_published_ground_truth_matches_the_entry(shared_data, name, path):
    spec = SCENES[name]
    labels = read_labels(shared_data / path, spec.label_files[0].key)
    assert labels.shape == (spec.height, spec.width)
    assert int((labels > 0).sum()) == spec.labelled_pixels
    assert labels.max() == len(spec.class_names)


def test_houston_training_and_test_maps_merge_into_the_entry(shared_data):
    spec = SCENES["houston2013"]
    train, test = (read_labels(shared_data / "Houston2013" / f.filename) for f in spec.label_files)
    merged = _merge_labels(train, test, "test")
    assert merged.shape == (spec.height, spec.width)
    assert int((train > 0).sum()) == 2832 and int((test > 0).sum()) == 12197
    assert int((merged > 0).sum()) == spec.labelled_pixels
    assert merged.max() == len(spec.class_names)


def test_ksc_wavelengths_are_the_published_list(shared_data):
    published = scipy.io.loadmat(shared_data / "KSC" / "KSC_spec.mat")["dataset_specBandWL"].ravel()
    np.testing.assert_allclose(SCENES["ksc"].wavelengths_nm, published, atol=0.005)


def test_salinas_wavelengths_are_the_aviris_list_minus_the_removed_bands(shared_data):
    table = scipy.io.loadmat(shared_data / "wavelengths" / "AVIRIS_wavelengths.mat")["AVIRIS_wavlen"].ravel()
    keep = [i for i in range(224) if i + 1 not in (*range(108, 113), *range(154, 168), 224)]
    np.testing.assert_allclose(SCENES["salinas"].wavelengths_nm, table[keep], atol=0.005)
