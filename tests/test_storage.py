"""Storage anywhere: a pretraining run whose workdir and data are in a bucket, killed inside a
checkpoint save and resumed bit-identical; `load_model` and `hsijax classify --checkpoint` reading
it back; two processes sharing nothing but the bucket, killed and restarted; bad URIs as one-line
errors.

The bucket is `gcp-storage-emulator` on 127.0.0.1 (`hsijax_testing.gcs_emulator`), reached by the
same clients as Cloud Storage: gcsfs through etils.epath, TensorStore for Orbax's arrays.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import BUCKET_DATA as DATA
from conftest import pretrain_command
from etils import epath
from hsijax_testing.gcs_emulator import committed_steps, free_port

from hsijax import HsijaxError, load_model
from hsijax.cli import main
from hsijax.train.metrics_log import read_metrics

pytestmark = pytest.mark.full  # a GCS emulator, and pretraining runs in child processes

RUN = "gs://bucket/run"


def kill_inside_a_save(process: subprocess.Popen, workdir: str, step: int) -> None:
    """SIGKILL ``process`` while the checkpoint of a step >= ``step`` is being written."""
    deadline = time.monotonic() + 240
    while process.poll() is None and time.monotonic() < deadline:
        if any(int(name) >= step and not done for name, done in committed_steps(workdir).items()):
            break
        time.sleep(0.01)
    assert process.poll() is None, f"the run ended (status {process.returncode}) before it was killed"
    process.send_signal(signal.SIGKILL)
    process.wait()


def leaves(model) -> list[np.ndarray]:
    return [np.asarray(leaf) for leaf in jax.tree.leaves(model.variables)]


def test_a_run_in_a_bucket_killed_inside_a_save_resumes_bit_identical(bucket, reference, tmp_path):
    """Workdir and data in the bucket: the first process copies the dataset to its (empty) cache, is
    killed while a checkpoint is half-written, and the same command resumes from the one before and
    ends with the uninterrupted local run's parameters, bit for bit; the uncommitted step is gone."""
    command = pretrain_command(RUN, DATA)  # the tiny config: a checkpoint every 10 steps
    bucket = {**bucket, "HSIJAX_DATA_CACHE": str(tmp_path / "cache")}
    process = subprocess.Popen(command, env=bucket, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    kill_inside_a_save(process, RUN, 20)
    assert f"copied {DATA}/indian_pines/1.0.0 to " in process.stderr.read()
    killed_at = committed_steps(RUN)
    assert not all(killed_at.values()), killed_at  # the kill left a half-written checkpoint
    result = subprocess.run(command, env=bucket, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "copied" not in result.stderr  # the cached dataset is used again
    resumed_from = int(result.stdout.split("steps ")[1].split(" ")[0])
    assert 10 <= resumed_from < 40
    assert "warning" not in result.stderr  # a kill damages no committed checkpoint
    for resumed, uninterrupted in zip(leaves(load_model(RUN)), leaves(load_model(reference)), strict=True):
        np.testing.assert_array_equal(resumed, uninterrupted)
    assert all(committed_steps(RUN).values()) and "40" in committed_steps(RUN)
    assert {r["step"] for r in read_metrics(RUN) if r["kind"] == "train"} == set(range(5, 41, 5))
    assert any(p.name.startswith("events.out.tfevents") for p in (epath.Path(RUN) / "tensorboard").iterdir())


def test_classify_reads_its_checkpoint_from_the_bucket(bucket, reference, tmp_path, capsys):
    """`hsijax classify --checkpoint gs://...` fine-tunes the encoder it reads from the bucket: the
    same scores as with the local reference run (the same parameters, the same seeds)."""
    if not committed_steps(RUN):
        pytest.skip("needs the run of the test before")
    rng = np.random.default_rng(0)
    labels = np.repeat([1, 2], 50).reshape(10, 10)
    cube = (rng.random((10, 10, 200)) + labels[..., None] * np.linspace(0, 1, 200)).astype(np.float32)
    np.save(tmp_path / "cube.npy", cube)
    np.save(tmp_path / "gt.npy", labels)
    scores = {}
    for name, checkpoint in (("bucket", RUN), ("local", reference)):
        code = main(["classify", str(tmp_path / "cube.npy"), "--gt", str(tmp_path / "gt.npy"), "--checkpoint",
                     str(checkpoint), "--fraction", "0.2", "--seeds", "1", "--steps", "4", "--methods", "pretrained",
                     "--out", str(tmp_path / name)])
        assert code == 0, capsys.readouterr().err
        scores[name] = json.loads((tmp_path / name / "metrics.json").read_text())["methods"]["pretrained"]
    assert scores["bucket"] == scores["local"]


@pytest.mark.parametrize("workdir, message", [
    ("ftp://host/run", "ftp://host/run: unsupported storage ftp://; use a local path or a URI of gs://"),
    ("gs://no-such-bucket/run", "gs://no-such-bucket/run: the bucket gs://no-such-bucket does not exist"),
])
def test_a_workdir_that_cannot_be_used_is_one_error(bucket, tmp_path, capsys, workdir, message):
    code = main(["pretrain", "--config", "tiny", "--workdir", workdir, "--no-progress"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"hsijax pretrain: error: {message}"), lines


def test_reading_what_is_not_in_the_bucket_is_one_error(bucket, capsys):
    with pytest.raises(HsijaxError, match="gs://bucket/empty: no checkpoint found"):
        load_model("gs://bucket/empty")
    code = main(["pretrain", "--config", "tiny", "--workdir", "gs://bucket/other", "--no-progress",
                 "--config.data.data_dir=gs://bucket/nothing"])
    err = capsys.readouterr().err
    assert code == 2 and "gs://bucket/nothing/indian_pines/1.0.0: no prepared dataset there" in err
    assert not (epath.Path("gs://bucket/other") / "checkpoints").exists()  # nothing half-written


def host_environment(bucket_environment: dict, scratch: Path) -> dict:
    """A process that shares no run state with the others but the bucket: its own home, temporary
    files and dataset cache under ``scratch``, and two CPU devices. (The test session's XLA cache of
    compiled programs stays shared: it holds no data, and it saves the suite a minute of compiling.)"""
    for folder in ("home", "tmp", "cache"):
        (scratch / folder).mkdir(parents=True, exist_ok=True)
    return {**bucket_environment, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
            "HOME": str(scratch / "home"), "TMPDIR": str(scratch / "tmp"), "HSIJAX_DATA_CACHE": str(scratch / "cache")}


def start_two_hosts(workdir: str, scratches: list[Path], bucket_environment: dict) -> list[subprocess.Popen]:
    coordinator = f"localhost:{free_port()}"
    return [subprocess.Popen(pretrain_command(workdir, DATA, "--coordinator",
                                              coordinator, "--num-processes", "2", "--process-id", str(index)),
                             env=host_environment(bucket_environment, scratch), cwd=scratch, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for index, scratch in enumerate(scratches)]


def test_two_hosts_sharing_only_the_bucket_killed_and_restarted_train_as_one(bucket, reference, tmp_path):
    """Two processes (2 devices each, one mesh), each with its own local scratch and the workdir and
    data in the bucket, are both killed after a checkpoint and restarted by the same command: they
    end with the parameters and losses of the one-process reference run (to the float32 rounding of
    4 devices vs 1: `test_pretrain.PARAMETER_TOLERANCE`)."""
    from test_pretrain import LOSS_TOLERANCE, PARAMETER_TOLERANCE

    workdir = "gs://bucket/two_hosts"
    scratches = [tmp_path / "host0", tmp_path / "host1"]
    processes = start_two_hosts(workdir, scratches, bucket)
    deadline = time.monotonic() + 240
    while not any(int(step) >= 10 and done for step, done in committed_steps(workdir).items()):
        assert all(p.poll() is None for p in processes) and time.monotonic() < deadline, \
            [p.communicate()[1][-2000:] for p in processes]
        time.sleep(0.05)
    for process in processes:
        process.send_signal(signal.SIGKILL)
        process.wait()
    for scratch in scratches:  # each host staged its own copy of the dataset
        assert list((scratch / "cache").rglob("dataset_info.json"))
    processes = start_two_hosts(workdir, scratches, bucket)
    outputs = [process.communicate(timeout=300) for process in processes]
    for process, (_, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
    resumed_from = int(outputs[0][0].split("steps ")[1].split(" ")[0])
    assert 10 <= resumed_from < 40 and "on 4 device(s)" in outputs[0][0]
    assert all(committed_steps(workdir).values()) and "40" in committed_steps(workdir)
    for got, want in zip(leaves(load_model(workdir)), leaves(load_model(reference)), strict=True):
        assert np.linalg.norm(got - want) / np.linalg.norm(want) < PARAMETER_TOLERANCE
    want = [r["mse"] for r in read_metrics(reference) if r["kind"] == "train"]
    got = {r["step"]: r["mse"] for r in read_metrics(workdir) if r["kind"] == "train"}  # a step logged again: the later
    np.testing.assert_allclose([got[step] for step in range(5, 41, 5)], want, rtol=LOSS_TOLERANCE)


def test_save_model_into_the_bucket_and_back(bucket):
    """A saved model written straight to the bucket loads back equal; one cut short before its
    checksum is refused in one line, not read in part; a second save to the same URI is refused."""
    import hsijax

    model = hsijax.create_model(4, widths=(8,), seed=3)
    hsijax.save_model(model, "gs://bucket/saved")
    for got, want in zip(leaves(load_model("gs://bucket/saved")), leaves(model), strict=True):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(HsijaxError, match="gs://bucket/saved: already exists"):
        hsijax.save_model(model, "gs://bucket/saved")
    hsijax.save_model(model, "gs://bucket/cut")
    (epath.Path("gs://bucket/cut") / "checksum").rmtree()  # what a kill before the last item leaves
    with pytest.raises(HsijaxError, match=r"gs://bucket/cut: unreadable checkpoint \(no checksum: a save cut short\)"):
        load_model("gs://bucket/cut")


def test_a_dataset_changed_in_the_bucket_is_copied_again(bucket, tmp_path, monkeypatch, capsys):
    """A host's copy of a bucket's dataset is used while the bucket holds the same one (the same
    dataset_info.json, which holds its metadata and source hashes), and copied again once it changed."""
    from hsijax.data import loading

    monkeypatch.setattr(loading, "DATA_CACHE", tmp_path / "cache")
    remote = epath.Path(DATA) / "indian_pines" / "1.0.0"
    local = loading.stage_dataset(remote)
    assert "copied" in capsys.readouterr().err
    assert loading.stage_dataset(remote) == local and capsys.readouterr().err == ""
    info = remote / "dataset_info.json"
    original = info.read_bytes()
    try:
        info.write_bytes(original.rstrip() + b"\n\n")  # rebuilt in the bucket: another file
        assert loading.stage_dataset(remote) == local
        err = capsys.readouterr().err
        assert "changed since this host copied it" in err and "copied" in err
        assert (local / "dataset_info.json").read_bytes() == info.read_bytes()
    finally:
        info.write_bytes(original)
