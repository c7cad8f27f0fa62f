"""`hsijax prepare SCENE`: from a manual directory, the Indian Pines fallback, and bad published files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from hsijax_testing import writers

from hsijax.cli import main
from hsijax.data.builders import PublishedSceneBuilder
from hsijax.data.provenance import sha256_of
from hsijax.data.storage import load_dataset
from hsijax.errors import HsijaxError

DATASETS = Path(__file__).resolve().parents[1] / "datasets"


def prepare(capsys, *args) -> tuple[int, str, str]:
    code = main(["prepare", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def manual_copy(tmp_path, scene: str) -> Path:
    folder = tmp_path / "manual"
    shutil.copytree(DATASETS / scene / "dummy_data", folder)
    return folder


def assert_nothing_left(data_dir: Path, scene: str) -> None:
    assert not (data_dir / scene).exists()
    assert not list(data_dir.glob(".building-*"))


@pytest.fixture
def recorded(monkeypatch):
    """Sets the hashes the builders' checksums.tsv record (the dummy files are not the published ones)."""
    def record(hashes: dict[str, str]):
        monkeypatch.setattr(PublishedSceneBuilder, "recorded_hashes", classmethod(lambda cls: hashes))
    return record


def dummy_hashes(scene: str) -> dict[str, str]:
    return {path.name: sha256_of(path) for path in (DATASETS / scene / "dummy_data").iterdir()}


def test_prepare_from_a_manual_directory_prints_the_dataset(tmp_path, capsys, recorded):
    recorded(dummy_hashes("ksc"))
    code, out, err = prepare(capsys, "ksc", "--manual-dir", manual_copy(tmp_path, "ksc"),
                             "--data-dir", tmp_path / "data")
    assert code == 0 and err == "", err
    summary, directory = out.strip().splitlines()  # what was read, then the dataset's directory
    assert directory == str(tmp_path / "data" / "ksc" / "1.0.0")
    assert summary.startswith("ksc: 6 × 5 pixels × 176 bands (band-last: ")
    meta = load_dataset(directory).metadata
    assert meta["bands"] == 176 and meta["sensor"] == "AVIRIS" and "manual directory" in meta["source"]
    assert {Path(f["path"]).name: f["sha256"] for f in meta["source_files"]} == dummy_hashes("ksc")
    assert (Path(directory) / "pixels.npy").is_file()  # the dense copy, written with the records
    # Prepared already: kept as it is, and built again only with --rebuild.
    info = Path(directory) / "dataset_info.json"
    before = info.stat().st_mtime_ns
    assert prepare(capsys, "ksc", "--manual-dir", tmp_path / "manual", "--data-dir", tmp_path / "data")[0] == 0
    assert info.stat().st_mtime_ns == before
    assert prepare(capsys, "ksc", "--manual-dir", tmp_path / "manual", "--data-dir", tmp_path / "data",
                   "--rebuild")[0] == 0
    assert info.stat().st_mtime_ns != before


def test_a_published_file_unlike_its_recorded_hash_is_refused(tmp_path, capsys):
    """The dummy KSC_gt.mat is not the published one, whose SHA-256 datasets/ksc/checksums.tsv records."""
    code, out, err = prepare(capsys, "ksc", "--manual-dir", manual_copy(tmp_path, "ksc"), "--data-dir", tmp_path / "data")
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) == 2 and "Traceback" not in err, err
    assert "KSC.mat: no SHA-256 is recorded for KSC.mat" in lines[0]  # the cube: none recorded, accepted
    assert lines[1].startswith("hsijax prepare: error: ") and "KSC_gt.mat: SHA-256 " in lines[1]
    assert "differs from the one recorded for KSC_gt.mat (a1d6ab92" in lines[1]
    assert_nothing_left(tmp_path / "data", "ksc")


def test_a_file_without_a_recorded_hash_is_accepted_with_one_line_and_its_hash_kept(tmp_path, capsys, recorded):
    recorded({})
    code, out, err = prepare(capsys, "ksc", "--manual-dir", manual_copy(tmp_path, "ksc"), "--data-dir", tmp_path / "data")
    assert code == 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 2 and all("no SHA-256 is recorded" in line for line in lines)
    meta = load_dataset(out.strip().splitlines()[-1]).metadata
    assert {Path(f["path"]).name: f["sha256"] for f in meta["source_files"]} == dummy_hashes("ksc")


@pytest.mark.parametrize("scene, file, folder", [
    ("indian_pines", "Indian_pines_gt.mat", "IndianPines"), ("ksc", "KSC_gt.mat", "KSC"),
    ("pavia_university", "PaviaU_gt.mat", "PaviaU"), ("salinas", "Salinas_gt.mat", "Salinas"),
    ("houston2013", "2013_IEEE_GRSS_DF_Contest_Samples_TR.tif", "Houston2013"),
    ("houston2013", "2013_IEEE_GRSS_DF_Contest_Samples_VA.tif", "Houston2013"),
])
def test_the_recorded_hashes_are_those_of_the_real_files(shared_data, scene, file, folder):
    """Every hash recorded in a checksums.tsv, checked against the real file in ../shared/data."""
    from hsijax.data.builders import builder_class

    path = shared_data / folder / file
    if not path.is_file():
        pytest.skip(f"{path} not present")
    assert builder_class(scene).checked(file, path).sha256 == builder_class(scene).recorded_hashes()[file]


def test_indian_pines_falls_back_to_the_embedded_copy(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("hsijax.data.builders.server_reachable", lambda url: False)  # offline
    code, out, err = prepare(capsys, "indian_pines", "--data-dir", tmp_path / "data")
    assert code == 0, err
    meta = load_dataset(out.strip().splitlines()[-1]).metadata
    assert (meta["height"], meta["width"], meta["bands"]) == (145, 145, 200)
    assert "tensorly" in meta["source"]


def test_missing_files_name_them_and_leave_nothing(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, out, err = prepare(capsys, "xuzhou", "--manual-dir", tmp_path / "empty",
                             "--data-dir", tmp_path / "data")
    assert code == 2 and out == ""
    assert err.startswith("hsijax prepare: error: xuzhou: the scene has no public download address")
    assert "image.hdr" in err and "true label.img" in err and "Traceback" not in err
    assert_nothing_left(tmp_path / "data", "xuzhou")


def bad_manual_dirs(tmp_path):
    """(scene, how to spoil its files, the message)."""
    def truncate(folder):
        path = folder / "KSC.mat"
        path.write_bytes(path.read_bytes()[:200])

    def out_of_range(folder):
        writers.write_mat_v5(folder / "KSC_gt.mat", {"KSC_gt": np.full((6, 5), 14, np.uint8)})

    def wrong_bands(folder):
        writers.write_mat_v5(folder / "KSC.mat", {"KSC": np.ones((6, 5, 100), np.uint16)})

    def wrong_shape(folder):
        writers.write_mat_v5(folder / "KSC_gt.mat", {"KSC_gt": np.ones((5, 5), np.uint8)})

    def nan(folder):
        writers.write_mat_v5(folder / "WHU_Hi_LongKou.mat",
                             {"WHU_Hi_LongKou": np.full((6, 5, 270), np.nan, np.float32)})

    return [
        ("ksc", truncate, "KSC.mat: not a readable MATLAB file"),
        ("ksc", out_of_range, "label 14 is out of range for 13 classes"),
        ("ksc", wrong_bands, "KSC.mat: 100 bands, but Kennedy Space Center (AVIRIS) has 176"),
        ("ksc", wrong_shape, "KSC_gt.mat: ground truth shape (5, 5) differs from the image's (6, 5)"),
        ("whu_hi_longkou", nan, "contains NaN or infinite values (in 270 of 270 bands)"),
    ]


@pytest.mark.parametrize("case", range(5))
def test_bad_published_files_are_one_clear_error(tmp_path, capsys, case, recorded):
    recorded({})  # what is spoiled is the content, not a hash
    scene, spoil, message = bad_manual_dirs(tmp_path)[case]
    folder = manual_copy(tmp_path, scene)
    spoil(folder)
    code, out, err = prepare(capsys, scene, "--manual-dir", folder, "--data-dir", tmp_path / "data")
    lines = err.strip().splitlines()
    assert code == 2 and message in lines[-1] and "Traceback" not in err, err
    assert lines[-1].startswith("hsijax prepare: error:")
    assert_nothing_left(tmp_path / "data", scene)


def test_a_manual_directory_that_does_not_exist(tmp_path, capsys):
    code, _, err = prepare(capsys, "ksc", "--manual-dir", tmp_path / "nope", "--data-dir", tmp_path)
    assert code == 2 and "nope: the manual directory does not exist" in err


def test_any_tensorly_release_carrying_indian_pines_will_do():
    """The embedded scene needs tensorly only as a data carrier: 0.9 and 0.10 carry the same files, so
    hsijax does not pin one release on a user's environment (before: tensorly==0.10.0)."""
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    tensorly = next(Requirement(r) for r in project["dependencies"] if r.startswith("tensorly"))
    assert {"0.9.0", "0.10.0"} <= set(tensorly.specifier.filter(["0.8.1", "0.9.0", "0.10.0"]))


def test_a_changed_indian_pines_file_is_refused(monkeypatch):
    """What a future tensorly might ship instead is checked by SHA-256, never read as Indian Pines."""
    from hsijax.data import scene

    monkeypatch.setitem(scene.INDIAN_PINES_FILES, "Indian_pines_gt.npy", "0" * 64)
    with pytest.raises(HsijaxError, match=r"Indian_pines_gt.npy: not the Indian Pines file .*SHA-256 .*pip install"):
        scene.load_indian_pines()
