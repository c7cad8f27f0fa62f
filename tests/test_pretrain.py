"""`hsijax pretrain`: checkpoints and resume, 1 vs 8 devices, 2 processes vs 1, plain-Orbax restore.

Every run is the `tiny` config (Indian Pines, 40 steps of 64 pixels): in a subprocess where the
device count (XLA_FLAGS) or the process count differs between runs, else in this process
(`pretrain_here`: a child's start-up, seconds each, tested nothing more).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import environment, pretrain, pretrain_command

from hsijax.cli import main
from hsijax.models.checkpoints import load_model
from hsijax.models.model import init_variables
from hsijax.train.metrics_log import read_metrics

pytestmark = pytest.mark.full  # pretraining runs in child processes, over several processes and devices

# Different device counts sum the per-device gradient means in a different order, so parameters
# differ by float32 rounding, which training then amplifies: where two bands are nearly tied the
# max-pool's argmax (the only path of the gradient to the encoder's last convolution) can flip.
# Measured after 40 steps, 8 vs 1 device: relative L2 difference 3.1e-3 for that kernel, <= 4e-4 for
# every other leaf. Tolerance: 1e-2 per leaf; and the logged training losses, which a data or
# gradient-averaging mistake would move by percents, must agree to 1e-4.
PARAMETER_TOLERANCE = 1e-2
LOSS_TOLERANCE = 1e-4


def pretrain_here(capsys, workdir: Path, data_dir: Path, *extra: str) -> tuple[int, str, str]:
    """`hsijax pretrain` with the tiny config in this process (one device): (exit code, stdout, stderr)."""
    code = main(pretrain_command(workdir, data_dir, *extra)[3:])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def params_of(workdir: Path) -> list[np.ndarray]:
    return [np.asarray(leaf) for leaf in jax.tree.leaves(load_model(workdir).variables)]


def assert_same_training(workdir: Path, reference: Path) -> None:
    differences = [np.linalg.norm(x - y) / np.linalg.norm(y)
                   for x, y in zip(params_of(workdir), params_of(reference))]
    assert max(differences) < PARAMETER_TOLERANCE, differences
    losses = [[r["mse"] for r in read_metrics(w) if r["kind"] == "train"] for w in (workdir, reference)]
    np.testing.assert_allclose(*losses, rtol=LOSS_TOLERANCE)


def test_a_run_leaves_checkpoints_metrics_and_tensorboard(reference):
    steps = sorted(int(p.name) for p in (reference / "checkpoints").iterdir() if p.name.isdigit())
    assert steps == [30, 40]  # every 10 steps, the last 2 kept
    records = read_metrics(reference)
    train = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    assert [r["step"] for r in train] == list(range(5, 41, 5))
    assert train[-1]["mse"] < train[0]["mse"] / 3 and all(r["pixels_per_second"] > 0 for r in train)
    assert [r["step"] for r in evals] == [20, 40] and evals[-1]["mpsnr_db/indian_pines"] > 15
    assert list((reference / "tensorboard").glob("events.out.tfevents.*"))
    model = load_model(reference / "checkpoints" / "40")
    assert model.config.code_width == 8 and model.config.widths == (8, 16)


def test_eight_devices_give_the_parameters_of_one(tmp_path, data_dir, reference):
    result = pretrain(tmp_path, data_dir, 8)
    assert "on 8 device(s)" in result.stdout
    assert_same_training(tmp_path, reference)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def test_two_processes_give_the_parameters_of_one(tmp_path, data_dir, reference):
    coordinator = f"localhost:{free_port()}"
    processes = [
        subprocess.Popen(
            pretrain_command(tmp_path, data_dir, "--coordinator", coordinator, "--num-processes", "2",
                             "--process-id", str(index)),
            env=environment(2), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for index in range(2)
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    for process, (_, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
    assert "on 4 device(s)" in outputs[0][0]  # 2 processes x 2 devices in one mesh
    assert_same_training(tmp_path, reference)


# Killing and resuming (five kills, one inside a save): tests/test_reliability.py.


def test_a_finished_run_resumes_to_nothing(capsys, data_dir, reference):
    code, out, err = pretrain_here(capsys, reference, data_dir)
    assert code == 0 and out.startswith("steps 40 -> 40"), err[-3000:]


def test_a_workdir_of_another_model_is_refused(capsys, data_dir, reference):
    before = sorted(p.name for p in (reference / "checkpoints").iterdir())
    code, _, err = pretrain_here(capsys, reference, data_dir, "--config.model.code_width=4")
    assert code == 2 and "holds a run of another model" in err
    assert sorted(p.name for p in (reference / "checkpoints").iterdir()) == before


def test_a_run_can_start_from_a_saved_model(tmp_path, capsys, data_dir, reference):
    code, _, err = pretrain_here(capsys, tmp_path, data_dir, f"--config.init_from={reference}",
                                 "--config.train.steps=1")
    assert code == 0, err[-3000:]
    started, saved = params_of(tmp_path), params_of(reference)
    fresh = [np.asarray(leaf) for leaf in jax.tree.leaves(init_variables(load_model(reference).config, 0))]
    # One Adam step at learning rate 1e-3 moves no weight by more than about 1e-3; the reference's 40
    # steps moved them up to 0.024 from fresh weights (measured), so fresh weights would fail this.
    assert max(float(np.abs(a - b).max()) for a, b in zip(started, saved)) < 2e-3
    assert max(float(np.abs(a - f).max()) for a, f in zip(started, fresh)) > 0.01


def test_a_built_in_config_starts_from_the_shipped_weights_and_says_what_it_overrules(tmp_path, capsys, data_dir):
    """`tiny` describes a smaller conditioned CNN; with init_from the network is the saved one, and
    one line names each config.model field the weights overrule (before: refused) -- or, for another
    network, the kind and that network's fields."""
    code, _, err = pretrain_here(capsys, tmp_path / "poster", data_dir, "--config.init_from=poster",
                                 "--config.train.steps=2")
    lines = [line for line in err.splitlines() if "config.init_from=poster" in line]
    assert code == 0 and len(lines) == 1, err[-3000:]
    assert "code_width 8 -> 16" in lines[0] and "decoder conditioned -> faithful" in lines[0]
    assert load_model(tmp_path / "poster").config == load_model("poster").config
    code, _, err = pretrain_here(capsys, tmp_path / "linear", data_dir, "--config.init_from=pretrained",
                                 "--config.train.steps=2")
    lines = [line for line in err.splitlines() if "config.init_from=pretrained" in line]
    assert code == 0, err[-3000:]
    assert len(lines) == 1 and "kind poster_cnn -> linear_grid (the linear network" in lines[0], lines
    assert load_model(tmp_path / "linear").config == load_model("pretrained").config


PLAIN_ORBAX = """
import json, sys
import numpy as np
import orbax.checkpoint as ocp
state = ocp.StandardCheckpointer().restore(sys.argv[1] + "/state")
config = json.load(open(sys.argv[1] + "/model_config/metadata"))
assert not any(name.startswith("hsijax") for name in sys.modules)
leaves = {"/".join(map(str, path)): np.asarray(leaf).shape for path, leaf in
          __import__("jax").tree_util.tree_flatten_with_path(state["params"])[0]}
print(json.dumps({"step": int(state["step"]), "code_width": config["code_width"], "leaves": len(leaves)}))
"""


def test_plain_orbax_restores_the_arrays_without_hsijax(reference):
    result = subprocess.run([sys.executable, "-c", PLAIN_ORBAX, str(reference / "checkpoints" / "40")],
                            capture_output=True, text=True, timeout=120, cwd="/")
    assert result.returncode == 0, result.stderr[-2000:]
    restored = json.loads(result.stdout.strip().splitlines()[-1])
    assert restored["step"] == 40 and restored["code_width"] == 8
    assert restored["leaves"] == len(params_of(reference))


def test_the_poster_config_trains_the_posters_decoder():
    from hsijax.configs import load_config

    assert load_config("poster").model.decoder == "faithful"


@pytest.mark.parametrize("args, message", [
    (["--config", "nope.py"], "nope.py: no such config file"),
    (["--config", "tiny", "--config.train.stepz=3"], "stepz"),
    (["--config", "tiny", "--config.train.steps=many"], "steps"),
])
def test_bad_configs_are_one_clear_line(tmp_path, capsys, args, message):
    """In this process (the command's own error path; a child process only added its start-up)."""
    from hsijax import cli

    assert cli.main(["pretrain", "--workdir", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
