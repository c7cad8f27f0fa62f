"""A dataset knows where it came from: an import or config asking for other options or files than a
dataset of the same name was built with is refused in one line naming what differs and --rebuild;
the same one is kept; a 0.1 dataset is used with one line; a bucket's changed dataset is copied again."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from hsijax.cli import main
from hsijax.data import loading
from hsijax.data.loading import ensure_scene
from hsijax.data.storage import load_dataset
from hsijax.errors import HsijaxError

rng = np.random.default_rng(0)
CUBE = rng.integers(0, 4000, size=(12, 10, 8)).astype(np.uint16)


def hsijax(capsys, *args) -> tuple[int, str, str]:
    code = main([*map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def imported(tmp_path, capsys):
    """A scene file imported as dataset ``scene``: (file, data dir, dataset directory)."""
    file = tmp_path / "scene.npy"
    np.save(file, CUBE)
    code, out, err = hsijax(capsys, "import", file, "--name", "scene", "--sensor", "AVIRIS", "--data-dir",
                            tmp_path / "data")
    assert code == 0, err
    return file, tmp_path / "data", Path(out.strip().splitlines()[-1])


def test_the_dataset_records_its_files_and_options(imported):
    file, _, directory = imported
    meta = load_dataset(directory).metadata
    assert meta["import_options"]["file"] == str(file.resolve()) and meta["import_options"]["sensor"] == "AVIRIS"
    (record,) = meta["source_files"]
    assert record["path"] == str(file.resolve()) and record["size"] == file.stat().st_size
    assert len(record["sha256"]) == 64


def test_the_same_import_again_keeps_the_dataset(imported, capsys):
    file, data_dir, directory = imported
    before = (directory / "dataset_info.json").stat().st_mtime_ns
    code, out, err = hsijax(capsys, "import", file, "--name", "scene", "--sensor", "AVIRIS", "--data-dir", data_dir)
    assert code == 0 and err == "" and out.strip().endswith(str(directory))
    assert (directory / "dataset_info.json").stat().st_mtime_ns == before


def test_an_import_with_other_options_is_refused_naming_them(imported, capsys):
    file, data_dir, directory = imported
    code, out, err = hsijax(capsys, "import", file, "--name", "scene", "--sensor", "ROSIS", "--data-dir", data_dir)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert "dataset scene was built with other options (sensor: 'AVIRIS' -> 'ROSIS')" in err
    assert "--rebuild" in err and load_dataset(directory).metadata["sensor"] == "AVIRIS"
    code, _, err = hsijax(capsys, "import", file, "--name", "scene", "--sensor", "ROSIS", "--data-dir", data_dir,
                          "--rebuild")
    assert code == 0, err
    assert load_dataset(directory).metadata["sensor"] == "ROSIS"


def test_a_config_naming_other_import_options_is_refused(imported):
    """Before: an existing NAME/1.0.0 won whatever config.data.imports said."""
    file, data_dir, directory = imported
    with pytest.raises(HsijaxError, match=r"sensor: 'AVIRIS' -> 'unknown'.*--rebuild"):
        ensure_scene("scene", data_dir, {"scene": str(file)})
    assert ensure_scene("scene", data_dir, {"scene": f"{file} --sensor AVIRIS"}) == directory


def test_a_changed_source_file_is_refused_and_rebuilt_on_request(imported, monkeypatch):
    file, data_dir, directory = imported
    options = {"scene": f"{file} --sensor AVIRIS"}
    stat = file.stat()
    os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched, same bytes: still the same
    assert ensure_scene("scene", data_dir, options) == directory
    np.save(file, CUBE + 1)  # same size, other contents
    with pytest.raises(HsijaxError, match=r"scene.npy: has other contents than when the dataset was built.*--rebuild"):
        ensure_scene("scene", data_dir, options)
    monkeypatch.setattr(loading, "_REBUILT", set())
    assert ensure_scene("scene", data_dir, options, rebuild=True) == directory
    assert load_dataset(directory).metadata["value_range"][0] == CUBE.min() + 1
    ensure_scene("scene", data_dir, options, rebuild=True)  # once a process: not built a second time


def test_a_catalogue_name_holding_an_imported_file_is_refused(tmp_path, capsys):
    file = tmp_path / "scene.npy"
    np.save(file, CUBE)
    assert hsijax(capsys, "import", file, "--name", "ksc", "--data-dir", tmp_path / "data")[0] == 0
    with pytest.raises(HsijaxError, match=r"ksc was built with other options \(built from the file .*scene.npy, asked for the catalogue's ksc\); pass --rebuild"):
        ensure_scene("ksc", tmp_path / "data")


def test_a_dataset_of_hsijax_0_1_is_used_with_one_line(imported, capsys):
    file, data_dir, directory = imported
    # 0.1 wrote neither field: remove them from TFDS's metadata file.
    path = directory / "metadata.json"
    stored = json.loads(path.read_text())
    for key in ("import_options", "source_files"):
        stored.pop(key)
    path.write_text(json.dumps(stored))
    capsys.readouterr()
    assert ensure_scene("scene", data_dir, {"scene": str(file)}) == directory
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "records no import options or source files" in err[0] and "--rebuild" in err[0]


@pytest.mark.parametrize("command, name", [("leave-out", "leave_out"), ("study", "study")])
def test_an_experiment_resumed_with_other_settings_is_refused(tmp_path, capsys, command, name):
    """Before: a result already on disk was kept whatever the seeds or steps, so the old numbers came back."""
    from hsijax.configs import LEAVE_OUT, STUDY, load_config
    from hsijax.experiments.settings import SETTINGS, check_settings

    workdir = tmp_path / "work"
    workdir.mkdir()
    check_settings(workdir, load_config(name, [], builtins=LEAVE_OUT + STUDY), f"hsijax {command}")
    code, _, err = hsijax(capsys, command, "--workdir", workdir, "--config.classify.seeds=7")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"holds an hsijax {command} run with other settings (classify.seeds: " in err and "-> 7)" in err
    assert sorted(p.name for p in workdir.iterdir()) == [SETTINGS]  # nothing ran


def test_a_growing_method_list_may_gain_entries_but_not_lose_or_rename_them(tmp_path):
    """The few-label study extended by a method runs only that method; its other settings still bind."""
    import json

    import ml_collections

    from hsijax.errors import HsijaxError
    from hsijax.experiments.settings import SETTINGS, check_settings

    def config(methods: str, seeds: int = 5):
        return ml_collections.ConfigDict({"per_pixel": methods, "seeds": seeds})

    check_settings(tmp_path, config("svm,map"), "hsijax few-label", growing=("per_pixel",))
    check_settings(tmp_path, config("svm,map,self_training"), "hsijax few-label", growing=("per_pixel",))
    assert json.loads((tmp_path / SETTINGS).read_text())["per_pixel"] == "svm,map,self_training"
    for other, field in ((config("svm"), "per_pixel"), (config("svm,mapp,self_training"), "per_pixel"),
                         (config("svm,map,self_training,x", seeds=3), "seeds")):
        with pytest.raises(HsijaxError, match=f"other settings \\({field}: "):
            check_settings(tmp_path, other, "hsijax few-label", growing=("per_pixel",))
    with pytest.raises(HsijaxError, match="per_pixel"):  # not growing: any change is another run
        check_settings(tmp_path, config("svm,map,self_training,x"), "hsijax few-label")


def test_a_workdir_that_records_no_settings_is_kept_with_one_line(tmp_path, capsys):
    from hsijax.configs import LEAVE_OUT, load_config
    from hsijax.experiments.settings import SETTINGS, check_settings

    (tmp_path / "without_samson").mkdir()  # a 0.1 workdir
    check_settings(tmp_path, load_config("leave_out", [], builtins=LEAVE_OUT), "hsijax leave-out")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "records no settings" in err[0] and (tmp_path / SETTINGS).is_file()
    check_settings(tmp_path, load_config("leave_out", ["--config.pretrain.data.data_dir=/elsewhere"],
                                         builtins=LEAVE_OUT), "hsijax leave-out")  # where data is read: free


def test_a_config_import_entry_is_the_import_options_as_fields(tmp_path):
    """Import options are config fields (paths under data.source_dir); 0.2's option strings still read."""
    from hsijax.configs.base import import_fields
    from hsijax.data.loading import ImportOptions, import_options_of

    entry = import_fields(dict(file="a/cube.mat", key="data", gt="a/gt.mat", shape=(4, 5), wavelengths="aviris",
                               keep_bands="a/bbl.txt", gt_majority=True))
    options = import_options_of(entry, "config.data.imports.x", tmp_path)
    assert options == ImportOptions(tmp_path / "a/cube.mat", gt=tmp_path / "a/gt.mat", key="data", shape=(4, 5),
                                    wavelengths="aviris", keep_bands=tmp_path / "a/bbl.txt", gt_majority=True)
    assert import_options_of(dict(file="c.npy", wavelengths="w.txt"), "x", tmp_path).wavelengths == str(tmp_path / "w.txt")
    assert import_options_of(f"{tmp_path}/c.npy --key K --shape 2 3", "x") == ImportOptions(
        tmp_path / "c.npy", key="K", shape=(2, 3))
    with pytest.raises(HsijaxError, match=r"config.data.imports.x: unknown import option\(s\) gt_kye; the options"):
        import_options_of(dict(file="c.npy", gt_kye="map"), "config.data.imports.x")


def test_the_built_in_configs_hold_no_path_of_a_checkout():
    """A config that reads ../shared/data takes it as a field (data.source_dir), relative to where it runs."""
    from hsijax.configs import LEAVE_OUT, load_config

    configs = Path(__file__).resolve().parents[1] / "hsijax" / "configs"
    for name, builtins in (("local", None), ("shipped", None), ("leave_out", LEAVE_OUT),
                           (str(configs / "leave_out_linear.py"), LEAVE_OUT)):
        config = load_config(name, [], **({"builtins": builtins} if builtins else {}))
        data = config.pretrain.data if "pretrain" in config else config
        data = data.data if "data" in data else data
        assert data.source_dir == "../shared/data"
        text = config.to_json_best_effort()
        assert str(Path(__file__).resolve().parents[1]) not in text and "/shared/data/" not in text
