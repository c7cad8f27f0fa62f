"""The decoder study: faithful vs conditioned decoder x code width, on scenes left out of pretraining.

A *cell* is one pretraining (`hsijax/configs/study.py`): a decoder, a code width and the scenes
left out. For each cell the study pretrains, reconstructs every unseen scene (MPSNR, MSSIM) and
fine-tunes on the classification scene at each label fraction (`hsijax.evaluate.classification`, the pretrained
method only); the scratch network and the SVM, which do not depend on the cell, run once per
fraction on the same splits. Each result is a ``metrics.json`` written whole, and a result already
on disk is kept, so an interrupted study resumes where it stopped. `hsijax.experiments.study_report` turns the
results into the page in docs/.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hsijax.data.loading import load_scene, scene_names
from hsijax.data.scene import Scene
from hsijax.evaluate.classification import ClassifySettings, classify_scene, print_progress
from hsijax.evaluate.figures import reconstruction_figures
from hsijax.evaluate.reconstruction import evaluate_reconstruction
from hsijax.experiments.settings import check_settings
from hsijax.files import check_output, write_json_atomic
from hsijax.models.checkpoints import load_model
from hsijax.train.loop import train


@dataclasses.dataclass(frozen=True)
class Cell:
    decoder: str
    code_width: int
    left_out: tuple[str, ...] = ()  # scenes left out of pretraining besides the unseen ones

    @property
    def name(self) -> str:
        without = "".join(f"_without_{scene}" for scene in self.left_out)
        return f"{self.decoder}_c{self.code_width}{without}"


names = scene_names  # every list in the study config is comma-separated, like the scene lists


def cells(config) -> list[Cell]:
    """The decoder x code-width grid, then the leave-scene-out cell."""
    grid = [Cell(decoder, int(width)) for width in names(config.code_widths) for decoder in names(config.decoders)]
    left_out = tuple(names(config.leave_out))
    if left_out:
        grid.append(Cell(config.leave_out_decoder, config.leave_out_code_width, left_out))
    return grid


def fractions(config) -> list[float]:
    return [float(value) for value in names(config.classify.fractions)]


def fraction_folder(fraction: float) -> str:
    return f"classify_{fraction * 100:g}pct"


def pretrain_config(config, cell: Cell):
    """The study's pretraining config with this cell's decoder, code width and scenes."""
    pretrain = config.pretrain.copy_and_resolve_references()
    pretrain.model.decoder = cell.decoder
    pretrain.model.code_width = cell.code_width
    pretrain.data.scenes = ",".join(s for s in names(pretrain.data.scenes) if s not in cell.left_out)
    return pretrain


def say(message: str) -> None:
    print(f"study: {message}", file=sys.stderr, flush=True)


def pretrain_cell(config, cell: Cell, workdir: Path, progress: bool) -> None:
    steps = config.pretrain.train.steps
    if (workdir / "checkpoints" / str(steps)).is_dir():
        return
    say(f"{cell.name}: pretraining {steps} steps")
    summary = train(pretrain_config(config, cell), workdir, progress=progress)
    say(f"{cell.name}: pretrained in {summary.seconds:.0f} s")


def reconstruct_cell(config, cell: Cell, workdir: Path, scene: Callable[[str], Scene]) -> None:
    model = None
    for name in names(config.unseen_scenes):
        out = workdir / "reconstruct" / name
        if (out / "metrics.json").is_file():
            continue
        model = model or load_model(workdir)
        metrics, original, recon = evaluate_reconstruction(model, scene(name))
        reconstruction_figures(original, recon, np.asarray(metrics["per_band_psnr_db"]),
                               scene(name).wavelengths_nm, name, out)
        write_json_atomic(out / "metrics.json", metrics)
        say(f"{cell.name}: {name} MPSNR {metrics['mpsnr_db']:.2f} dB, MSSIM {metrics['mssim']:.4f}")


def classify(config, out: Path, methods: tuple[str, ...], fraction: float, checkpoint: Path | None,
             what: str, scene: Callable[[str], Scene]) -> None:
    if (out / "metrics.json").is_file():
        return
    say(f"{what}: classifying {config.classify.dataset} with {fraction:.0%} of the labels")
    settings = ClassifySettings(fraction, config.classify.seeds, config.classify.steps, methods=methods)
    classify_scene(scene(config.classify.dataset), settings, out, load_model(checkpoint) if checkpoint else None,
                   progress=print_progress)


def run_study(config, workdir, progress: bool = True) -> None:
    """Every stage of the study in ``workdir`` (what is done already is kept); cheap stages first,
    so the reconstruction answers come early. `hsijax.experiments.study_report.write_report` then
    renders the page from what is on disk."""
    workdir = check_output(Path(workdir).expanduser(), "directory")
    workdir.mkdir(parents=True, exist_ok=True)
    check_settings(workdir, config, "hsijax study")
    grid = cells(config)
    data = config.pretrain.data
    scene = functools.cache(  # read once per run
        lambda name: load_scene(name, data.data_dir, data.imports, rebuild=data.get("rebuild", False),
                                source_dir=data.get("source_dir", "")))
    for cell in grid:
        pretrain_cell(config, cell, workdir / cell.name, progress)
    for cell in grid:
        reconstruct_cell(config, cell, workdir / cell.name, scene)
    # The cells at the leave-out width (both decoders, with and without the left-out scenes) and the
    # baselines answer the main questions: they are classified first, at every fraction.
    first = [cell for cell in grid if cell.code_width == config.leave_out_code_width]
    for cells_now, baselines in ((first, config.classify.baselines), ([c for c in grid if c not in first], False)):
        for fraction in fractions(config):
            for cell in cells_now:
                out = workdir / cell.name / fraction_folder(fraction)
                classify(config, out, ("pretrained",), fraction, workdir / cell.name, cell.name, scene)
            if baselines:
                classify(config, workdir / "baselines" / fraction_folder(fraction), ("scratch", "svm"), fraction,
                         None, "baselines", scene)
