"""`hsijax.models.checkpoints`: one format, one integrity check and one fallback past damaged steps
for runs, saved models and other arrays with a JSON record (a classifier); the old module paths.

The run is `SMALL_PRETRAINING` (2 steps of 8 pixels on a 6 x 5 x 12 scene) saved at every step, in
this process."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from conftest import SMALL_PRETRAINING

from hsijax.cli import main
from hsijax.errors import HsijaxError
from hsijax.models import checkpoints
from hsijax.models.checkpoints import (
    checkpoint_steps,
    checksums,
    load_arrays,
    load_model,
    restore_on_this_machine,
    save_arrays,
)


def pretrain_command(root: Path, work: Path) -> list[str]:
    return ["pretrain", *SMALL_PRETRAINING, "--workdir", str(work), f"--config.data.data_dir={root / 'data'}",
            "--config.train.checkpoint_every=1"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """The root of a 2-step run saved at steps 1 and 2 (``work/checkpoints/{1,2}``), and its data."""
    root = tmp_path_factory.mktemp("checkpoints_run")
    cube = np.random.default_rng(0).uniform(0, 1000, size=(6, 5, 12)).astype(np.float32)
    np.save(root / "small.npy", cube)
    assert main(["import", str(root / "small.npy"), "--name", "small", "--data-dir", str(root / "data")]) == 0
    assert main(pretrain_command(root, root / "work")) == 0
    assert sorted(p.name for p in (root / "work" / "checkpoints").iterdir()) == ["1", "2"]
    return root


def leaves(tree) -> list[np.ndarray]:
    return [np.asarray(leaf) for leaf in jax.tree.leaves(tree)]


def assert_same(got, want) -> None:
    for a, b in zip(leaves(got), leaves(want), strict=True):
        np.testing.assert_array_equal(a, b)


def copy_run(run: Path, folder: Path) -> Path:
    shutil.copytree(run / "work", folder)
    return folder


def spoil_checksum(step: Path) -> None:
    """The newest step's checksum no longer matches its parameters (as if they were garbled)."""
    record = step / "checksum" / "metadata"
    saved = json.loads(record.read_text())
    record.write_text(json.dumps({**saved, "params": "0" * 64}))


def test_one_fallback_serves_load_model_and_a_resumed_run(tmp_path, capsys, run):
    """Step 2's checksum spoilt: `load_model` and `hsijax pretrain` both name it in one warning line
    with the same reason and use step 1; the run moves it aside and ends bit-identical to the
    undamaged run."""
    work = copy_run(run, tmp_path / "work")
    spoil_checksum(work / "checkpoints" / "2")
    capsys.readouterr()
    model = load_model(work)
    (loaded,) = capsys.readouterr().err.strip().splitlines()
    reason = "unreadable checkpoint (its parameters do not match their checksum)"
    assert loaded == f"hsijax: warning: {work / 'checkpoints' / '2'}: {reason}; using step 1"
    assert_same(model.variables, load_model(run / "work" / "checkpoints" / "1").variables)
    assert sorted(p.name for p in (work / "checkpoints").iterdir()) == ["1", "2"]  # load_model moves nothing

    assert main(pretrain_command(run, work)) == 0
    out, err = capsys.readouterr()
    (resumed,) = [line for line in err.strip().splitlines() if not line.startswith("pretrain: step ")]
    assert resumed == (f"hsijax: warning: {work / 'checkpoints' / '2'}: {reason}; moved to 2.damaged, "
                       "resuming from step 1")
    assert out.startswith("steps 1 -> 2")
    assert sorted(p.name for p in (work / "checkpoints").iterdir()) == ["1", "2", "2.damaged"]
    assert_same(load_model(work).variables, load_model(run / "work").variables)


def test_a_step_saved_with_the_runs_rng_key_still_loads_and_resumes(tmp_path, capsys, run):
    """Before 0.2 a run's state also held an RNG key nothing read; such a step (checksummed with it)
    loads, and a run resumes from it bit-identical, without the key."""
    work = copy_run(run, tmp_path / "work")
    shutil.rmtree(work / "checkpoints" / "2")
    step = work / "checkpoints" / "1"
    state = restore_on_this_machine(step / "state")
    assert set(state) == {"params", "opt_state", "step"}  # what a run saves now
    state["rng"] = np.asarray(jax.random.key_data(jax.random.key(0)))
    shutil.rmtree(step / "state")
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(step / "state", state)
    checkpointer.wait_until_finished()
    (step / "checksum" / "metadata").write_text(json.dumps(checksums(state)))
    assert_same(load_model(step).variables, load_model(run / "work" / "checkpoints" / "1").variables)
    capsys.readouterr()
    assert main(pretrain_command(run, work)) == 0
    out, err = capsys.readouterr()
    assert out.startswith("steps 1 -> 2") and "warning" not in err, err
    assert_same(load_model(work).variables, load_model(run / "work").variables)
    assert "rng" not in restore_on_this_machine(work / "checkpoints" / "2" / "state")


def test_steps_are_orbaxs_complete_steps_newest_first(tmp_path, run):
    work = copy_run(run, tmp_path / "work")
    folder = work / "checkpoints"
    shutil.copytree(folder / "1", folder / "1.damaged")
    shutil.copytree(folder / "1", folder / "3.orbax-checkpoint-tmp-1234")  # a save cut short
    (folder / "notes").mkdir()
    assert [p.name for p in checkpoint_steps(folder)] == ["2", "1"]
    assert checkpoint_steps(tmp_path / "nothing") == []


def garble_largest_file(folder: Path) -> None:
    path = max((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    data = bytearray(path.read_bytes())
    for offset in range(0, len(data), 7):
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def classifier_like(seed: int) -> tuple[dict, dict]:
    """Arrays and a JSON record, as a classifier will save them: no pickle anywhere."""
    rng = np.random.default_rng(seed)
    arrays = {"params": {"head": {"kernel": rng.normal(size=(16, 64)).astype(np.float32),
                                  "bias": np.zeros(64, np.float32)}},
              "class_ids": np.arange(5, dtype=np.int32)}
    record = {"kind": "classifier", "classes": ["corn", "grass", "hay", "soy", "wheat"], "band_count": 200,
              "wavelengths_nm": [400.0 + 10 * i for i in range(200)]}
    return arrays, record


def test_arrays_and_a_json_record_round_trip_and_a_garbled_array_is_refused_in_one_line(tmp_path):
    arrays, record = classifier_like(0)
    folder = save_arrays(tmp_path / "classifier", arrays, {"record": record})
    assert sorted(p.name for p in Path(folder).iterdir()) == ["checksum", "record", "state"]
    assert json.loads((Path(folder) / "record" / "metadata").read_text()) == record  # plain JSON
    loaded, records = load_arrays(folder)
    assert records == {"record": record}
    assert_same(loaded, arrays)
    assert jax.tree.structure(loaded) == jax.tree.structure(arrays)
    with pytest.raises(HsijaxError, match="already exists"):
        save_arrays(folder, arrays, {"record": record})

    other, _ = classifier_like(1)  # other values under the first folder's checksum
    mixed = Path(shutil.copytree(folder, tmp_path / "mixed"))
    shutil.rmtree(mixed / "state")
    shutil.copytree(Path(save_arrays(tmp_path / "other", other, {"record": record})) / "state", mixed / "state")
    with pytest.raises(HsijaxError) as error:
        load_arrays(mixed)
    assert str(error.value) == f"{mixed}: unreadable checkpoint (its parameters do not match their checksum)"

    garbled = Path(shutil.copytree(folder, tmp_path / "garbled"))
    garble_largest_file(garbled / "state")
    with pytest.raises(HsijaxError) as error:
        load_arrays(garbled)
    message = str(error.value)
    assert message.startswith(f"{garbled}: unreadable checkpoint (") and "\n" not in message, message
    with pytest.raises(HsijaxError, match="unreadable checkpoint"):
        load_model(folder)  # arrays with a record, but not a model


def test_a_save_model_folder_is_save_arrays_with_the_model_config(tmp_path):
    model = checkpoints.load_pretrained()
    folder = Path(checkpoints.save_model(model, tmp_path / "model"))
    arrays, records = load_arrays(folder, ("model_config",))
    assert records["model_config"] == model.config.to_dict()
    assert_same(arrays["params"], model.variables)
    assert (checkpoints.load_model_and_step(folder)[1]) == folder


def test_the_old_module_paths_still_work_with_a_deprecation_warning():
    from hsijax.models import saved_model
    from hsijax.train import checkpoint

    with pytest.warns(DeprecationWarning, match="use hsijax.models.checkpoints.load_model"):
        from hsijax.models.saved_model import load_model as old_load_model
    assert old_load_model is load_model
    with pytest.warns(DeprecationWarning, match="use hsijax.models.checkpoints.restore_latest"):
        from hsijax.train.checkpoint import restore_latest
    assert restore_latest is checkpoints.restore_latest
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for name in saved_model.MOVED:
            assert getattr(saved_model, name) is getattr(checkpoints, name), name
        for name in checkpoint.MOVED:
            assert getattr(checkpoint, name) is getattr(checkpoints, name), name
    with pytest.raises(ImportError, match="newest_step_directory was removed after hsijax 0.2.0: use "
                                          "hsijax.models.checkpoints.load_model_and_step"):
        from hsijax.models.saved_model import newest_step_directory  # noqa: F401
    with pytest.raises(AttributeError):
        checkpoint._restore_step  # noqa: B018


def test_a_shared_grid_pca_is_saved_with_a_checksum_and_the_0_2_layout_still_loads(tmp_path):
    """`SharedGridPCA.save` writes through `save_arrays` (state, record, checksum last): a garbled
    array is refused in one line; a code saved by 0.2 (``arrays/`` + ``record/``, no checksum) loads
    with the same arrays; the shipped code is in the new layout."""
    from hsijax.models.linear_code import SHIPPED, SharedGridPCA, saved_record

    shipped = SharedGridPCA.load_pretrained(32)
    assert sorted(p.name for p in Path(SHIPPED).iterdir()) == ["checksum", "record", "state"]
    saved = shipped.save(tmp_path / "code", {"scenes": ["a", "b"]})
    again = SharedGridPCA.load(saved)
    np.testing.assert_array_equal(again.basis, shipped.basis)
    assert saved_record(saved) == {"scenes": ["a", "b"]}

    old = tmp_path / "old"  # what 0.2's `save` wrote
    old.mkdir()
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(old / "arrays", {key: np.asarray(value, np.float32) for key, value in
                                       (("mean", shipped.mean), ("basis", shipped.basis), ("scale", shipped.scale))})
    checkpointer.wait_until_finished()
    (old / "record").mkdir()
    ocp.JsonCheckpointHandler().save(old / "record", args=ocp.args.JsonSave({"scenes": ["a"]}))
    loaded = SharedGridPCA.load(old, 16)
    np.testing.assert_array_equal(loaded.basis, shipped.basis[:16])
    np.testing.assert_array_equal(loaded.scale, shipped.scale[:16])

    garbled = tmp_path / "garbled"
    shutil.copytree(saved, garbled)
    chunk = max((p for p in (garbled / "state").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(HsijaxError, match=r"garbled: not a readable shared-grid PCA \("):
        SharedGridPCA.load(garbled)
