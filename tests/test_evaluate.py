"""`hsijax reconstruct` and `hsijax encode` with the tiny pretrained checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest

import hsijax
from hsijax.cli import main
from hsijax.data.scene import load_indian_pines
from hsijax.metrics import mpsnr, per_band_ssim
from hsijax.spectral import fit_normalization

pytestmark = pytest.mark.full  # the evaluation commands in child processes


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([*map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_reconstruct_writes_metrics_and_figures(tmp_path, capsys, data_dir, reference):
    code, out, err = run(capsys, "reconstruct", "--checkpoint", reference, "--dataset", "indian_pines",
                         "--data-dir", data_dir, "--out", tmp_path)
    assert code == 0, err
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics) == {"dataset", "bands", "code_width", "mpsnr_db", "mssim", "per_band_psnr_db",
                            "mean_spectrum_mpsnr_db"}
    assert metrics["bands"] == 200 and metrics["code_width"] == 8 and len(metrics["per_band_psnr_db"]) == 200
    scene = load_indian_pines()  # recompute independently from the embedded copy
    original = fit_normalization(scene.cube).apply(scene.cube)
    recon = hsijax.reconstruct(hsijax.load_model(reference), original, scene.wavelengths_nm)
    assert abs(metrics["mpsnr_db"] - mpsnr(original, recon)) < 1e-4
    assert 0 < metrics["mssim"] < 1
    mean_spectrum = np.broadcast_to(original.reshape(-1, 200).mean(axis=0), original.shape)
    assert abs(metrics["mean_spectrum_mpsnr_db"] - mpsnr(original, mean_spectrum)) < 1e-4
    for name in ("false_colour.png", "per_band_psnr.png", "spectra.png"):
        assert (tmp_path / name).stat().st_size > 5_000
    assert "MPSNR" in out


def test_ssim_is_one_for_identical_bands_and_falls_with_noise():
    rng = np.random.default_rng(0)
    cube = rng.uniform(0, 1, (32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(per_band_ssim(cube, cube), 1.0, rtol=1e-5)
    noisy = np.clip(cube + rng.normal(0, 0.2, cube.shape), 0, 1).astype(np.float32)
    assert (per_band_ssim(cube, noisy) < 0.9).all()


def test_encode_writes_the_codes_of_every_pixel(tmp_path, capsys, reference):
    scene = load_indian_pines()
    np.save(tmp_path / "cube.npy", scene.cube)
    code, out, err = run(capsys, "encode", "--checkpoint", reference, tmp_path / "cube.npy",
                         "--output", tmp_path / "codes.npy", "--no-progress")
    assert code == 0, err
    codes = np.load(tmp_path / "codes.npy")
    assert codes.shape == (145, 145, 8) and codes.dtype == np.float32
    expected = hsijax.encode(hsijax.load_model(reference), fit_normalization(scene.cube).apply(scene.cube))
    np.testing.assert_allclose(codes, expected, rtol=1e-5, atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["codes.json", "codes.npy", "cube.npy"]  # no temporary left
    record = json.loads((tmp_path / "codes.json").read_text())
    norm = fit_normalization(scene.cube)
    assert record["normalization"] == {"offset": norm.offset, "scale": norm.scale, "fitted_on": "scene"}
    assert record["hsijax_version"] == hsijax.__version__ and record["code_width"] == 8


def test_encode_a_missing_checkpoint_is_one_line(tmp_path, capsys):
    np.save(tmp_path / "cube.npy", np.ones((4, 4, 10), np.float32))
    code, _, err = run(capsys, "encode", "--checkpoint", tmp_path / "nope", tmp_path / "cube.npy",
                       "--output", tmp_path / "codes.npy")
    assert code == 2 and "no checkpoint found" in err and not (tmp_path / "codes.npy").exists()


def archive(folder, count: int = 5):
    """``count`` small scenes of different band counts in ``folder``, and their expected codes."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(count):
        np.save(folder / f"scene_{index}.npy", rng.integers(0, 4000, (12 + index, 9, 40 + 30 * index)).astype(np.uint16))
    return sorted(folder.iterdir())


def expected_codes(model, path):
    cube = np.load(path)
    return hsijax.encode(model, fit_normalization(cube).apply(cube))


def test_an_archive_is_shared_between_processes_and_finished_outputs_are_skipped(tmp_path, capsys, reference):
    files = archive(tmp_path / "scenes")
    out = tmp_path / "codes"
    for process in ("0", "1"):
        code, printed, err = run(capsys, "encode", "--checkpoint", reference, tmp_path / "scenes", "--output", out,
                                 "--normalization", "scene", "--num-processes", "2", "--process-id", process,
                                 "--no-progress")
        assert code == 0, err
        assert printed.strip() == f"process {process} of 2: encoded {3 if process == '0' else 2}, skipped 0 already done, into {out}"
    model = hsijax.load_model(reference)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"scene_{i}.{s}" for i in range(5) for s in ("json", "npy"))
    for path in files:
        np.testing.assert_allclose(np.load(out / path.name), expected_codes(model, path), rtol=1e-5, atol=1e-6)
    code, printed, _ = run(capsys, "encode", "--checkpoint", reference, *files, "--output", out,
                           "--normalization", "scene", "--no-progress")
    assert code == 0 and "encoded 0, skipped 5 already done" in printed


def test_a_killed_archive_process_resumes_by_running_the_same_command(tmp_path, reference):
    """Two processes; one is killed with SIGKILL after its first output; the same command again
    finishes its share without redoing that output; every output whole, no temporary left."""
    import signal
    import subprocess
    import sys
    import time

    from conftest import environment

    files = archive(tmp_path / "scenes", count=6)
    out = tmp_path / "codes"
    command = lambda process: [sys.executable, "-m", "hsijax.cli", "encode", "--checkpoint", str(reference),
                               str(tmp_path / "scenes"), "--output", str(out), "--normalization", "scene",
                               "--num-processes", "2", "--process-id", process, "--no-progress"]
    first = subprocess.Popen(command("0"), env=environment(1), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    second = subprocess.run(command("1"), env=environment(1), capture_output=True, text=True, timeout=240)
    assert second.returncode == 0, second.stderr
    deadline = time.monotonic() + 240
    while not (out / "scene_0.npy").is_file() and first.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=60)
    again = subprocess.run(command("0"), env=environment(1), capture_output=True, text=True, timeout=240)
    assert again.returncode == 0, again.stderr
    skipped = int(again.stdout.split("skipped ")[1].split(" ")[0])
    assert skipped >= 1 and f"encoded {3 - skipped}, skipped {skipped}" in again.stdout
    model = hsijax.load_model(reference)
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".npy") == [f"scene_{i}.npy" for i in range(6)]
    for path in files:
        np.testing.assert_allclose(np.load(out / path.name), expected_codes(model, path), rtol=1e-5, atol=1e-6)
