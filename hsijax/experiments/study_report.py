"""The decoder study's page: tables and figures from the ``metrics.json`` files of `hsijax.experiments.study`.

Everything on the page is read from the study's workdir, so the page can be rendered at any time:
a result not computed yet is a dash, and the page says which are missing. `rewrite_page` renders it
again from the ``study.json`` written beside it, without the workdir.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from hsijax.evaluate.figures import pyplot, save_atomic
from hsijax.experiments.study import Cell, cells, fraction_folder, fractions, names
from hsijax.files import write_json_atomic, write_text_atomic

DASH = "—"
CHOSEN = "†"  # a row whose decoder these same scenes chose: not a held-out result


def read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def collect(config, workdir: Path) -> dict:
    """{"reconstruction": {cell: {scene: metrics}}, "seen": {cell: held-out MPSNR of the seen scenes},
    "classification": {cell or baseline: {fraction: scores}}}."""
    grid, scenes = cells(config), names(config.unseen_scenes)
    reconstruction = {c.name: {s: read(workdir / c.name / "reconstruct" / s / "metrics.json") for s in scenes}
                      for c in grid}
    seen = {c.name: last_eval_mean(workdir / c.name, config.pretrain.train.steps) for c in grid}
    classification = {}
    for fraction in fractions(config):
        for cell in grid:
            report = read(workdir / cell.name / fraction_folder(fraction) / "metrics.json")
            classification.setdefault(cell.name, {})[fraction] = report and report["methods"]["pretrained"]
        baselines = read(workdir / "baselines" / fraction_folder(fraction) / "metrics.json")
        for method in ("scratch", "svm"):
            classification.setdefault(method, {})[fraction] = baselines and baselines["methods"][method]
    return {"reconstruction": reconstruction, "seen": seen, "classification": classification}


def last_eval_mean(workdir: Path, steps: int) -> float | None:
    """Mean MPSNR over the pretraining scenes' held-out pixels at the end of a finished run."""
    from hsijax.train.metrics_log import read_metrics

    evals = [r for r in read_metrics(workdir) if r["kind"] == "eval" and r["step"] == steps]
    return evals[-1]["mpsnr_db/mean"] if evals else None


def mean_mpsnr(per_scene: dict) -> float | None:
    """Mean over the unseen scenes, or None until every one of them is reconstructed."""
    if not per_scene or None in per_scene.values():
        return None
    return float(np.mean([m["mpsnr_db"] for m in per_scene.values()]))


def number(value, digits: int = 2) -> str:
    return DASH if value is None else f"{value:.{digits}f}"


def chosen_cell(config, results: dict) -> str | None:
    """The leave-scene-out cell when its decoder is the one the unseen scenes chose, else None.

    The leave-scene-out cell's decoder (``config.leave_out_decoder``) is picked from the grid by its
    mean MPSNR on the unseen scenes at the leave-out width; when it is that width's best decoder
    there, the cell's reconstructions of those scenes are not a held-out result. Nothing is marked
    before every cell of that width has reconstructed every unseen scene, or with one decoder only.
    """
    left_out = tuple(names(config.leave_out))
    width = config.leave_out_code_width
    means = {decoder: mean_mpsnr(results["reconstruction"].get(Cell(decoder, width).name, {}))
             for decoder in names(config.decoders)}
    if not left_out or len(means) < 2 or None in means.values():
        return None
    best = max(means, key=means.get)
    return Cell(best, width, left_out).name if best == config.leave_out_decoder else None


def chosen_note(config, cell: str) -> str:
    """The footnote under the reconstruction table when `chosen_cell` marked a row."""
    scenes = ", ".join(f"`{s}`" for s in names(config.unseen_scenes))
    return (f"{CHOSEN} `{cell}`: its decoder ({config.leave_out_decoder}) was chosen by this study on {scenes} "
            f"(the better mean MPSNR at c = {config.leave_out_code_width}), which are also this table's test "
            "scenes: not a held-out result.")


def reconstruction_table(results: dict, scenes: list[str], chosen: str | None = None) -> list[str]:
    header = ("| cell | " + " | ".join(f"{s} MPSNR / MSSIM" for s in scenes)
              + " | mean MPSNR, unseen | mean MPSNR, seen scenes' held-out pixels |")
    lines = [header, "|---" * (len(scenes) + 3) + "|"]
    for cell, per_scene in results["reconstruction"].items():
        row = [f"{number(m and m['mpsnr_db'])} / {number(m and m['mssim'], 3)}" for m in per_scene.values()]
        title = f"{cell} {CHOSEN}" if cell == chosen else cell
        lines.append(f"| {title} | " + " | ".join(row) + f" | {number(mean_mpsnr(per_scene))} | "
                     f"{number(results['seen'][cell])} |")
    own = [scene_mean_spectrum(results, scene) for scene in scenes]
    lines.append("| the scene's own mean spectrum | " + " | ".join(number(v) for v in own) + " | "
                 + number(np.mean(own) if None not in own else None) + " | |")
    return lines


def scene_mean_spectrum(results: dict, scene: str) -> float | None:
    """The scene's own mean-spectrum MPSNR, which every cell's reconstruction of it records alike."""
    done = [per_scene[scene] for per_scene in results["reconstruction"].values() if per_scene[scene]]
    return done[0]["mean_spectrum_mpsnr_db"] if done else None


def decoder_gap_table(config, results: dict) -> list[str]:
    """Conditioned minus faithful, mean MPSNR over the unseen scenes, per code width."""
    lines = ["| code width | conditioned − faithful (dB) |", "|---|---|"]
    for width in names(config.code_widths):
        conditioned, faithful = (mean_mpsnr(results["reconstruction"].get(Cell(d, int(width)).name, {}))
                                 for d in ("conditioned", "faithful"))
        gap = None if conditioned is None or faithful is None else conditioned - faithful
        lines.append(f"| {width} | {number(gap)} |")
    return lines


def score(scores: dict | None, key: str, scale: float) -> str:
    if not scores:
        return DASH
    return f"{scores[key]['mean'] * scale:.2f} ± {scores[key]['std'] * scale:.2f}"


def classification_table(config, results: dict) -> list[str]:
    columns = [(f, key) for f in fractions(config) for key in ("oa", "aa", "kappa")]
    header = "| method | " + " | ".join(f"{k.upper() if k != 'kappa' else 'κ'} {f:.0%}" for f, k in columns) + " |"
    lines = [header, "|---" * (len(columns) + 1) + "|"]
    for method, per_fraction in results["classification"].items():
        row = [score(per_fraction[f], k, 1 if k == "kappa" else 100) for f, k in columns]
        lines.append(f"| {method} | " + " | ".join(row) + " |")
    return lines


def reconstruction_figure(results: dict, scenes: list[str], out: Path) -> Path:
    figure, axis = pyplot().subplots(figsize=(9, 3.8))
    cell_names = list(results["reconstruction"])
    width = 0.8 / max(len(cell_names), 1)
    for index, cell in enumerate(cell_names):
        values = [m["mpsnr_db"] if m else np.nan for m in results["reconstruction"][cell].values()]
        axis.bar(np.arange(len(scenes)) + index * width, values, width, label=cell)
    axis.set_xticks(np.arange(len(scenes)) + 0.4 - width / 2, scenes)
    axis.set_ylabel("MPSNR (dB)")
    axis.set_title("Reconstruction of scenes left out of pretraining")
    axis.legend(fontsize=7, ncol=2)
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return save_atomic(figure, out / "reconstruction_mpsnr.png")


def per_band_figure(results: dict, scenes: list[str], width: int, out: Path) -> Path:
    """Per-band PSNR of the two decoders at one code width, one panel per unseen scene."""
    figure, axes = pyplot().subplots(1, len(scenes), figsize=(4.2 * len(scenes), 3.4), squeeze=False)
    for axis, scene in zip(axes[0], scenes):
        for decoder in ("faithful", "conditioned"):
            metrics = results["reconstruction"].get(Cell(decoder, width).name, {}).get(scene)
            if metrics:
                axis.plot(metrics["per_band_psnr_db"], ".-", markersize=2, label=decoder)
        axis.set_title(f"{scene} (c = {width})")
        axis.set_xlabel("band")
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("PSNR (dB)")
    if axes[0][0].get_legend_handles_labels()[0]:  # nothing to label before that width has results
        axes[0][0].legend()
    figure.tight_layout()
    return save_atomic(figure, out / "per_band_psnr.png")


def classification_figure(config, results: dict, out: Path) -> Path:
    figure, axes = pyplot().subplots(1, len(fractions(config)), figsize=(2 + 4.5 * len(fractions(config)), 3.8),
                                squeeze=False, sharey=True)
    for axis, fraction in zip(axes[0], fractions(config)):
        methods = list(results["classification"])
        scores = [results["classification"][m][fraction] for m in methods]
        means = [s["oa"]["mean"] * 100 if s else np.nan for s in scores]
        stds = [s["oa"]["std"] * 100 if s else 0 for s in scores]
        rows = np.arange(len(methods))
        axis.barh(rows, means, xerr=stds, color=["C1" if m in ("scratch", "svm") else "C0" for m in methods])
        axis.set_yticks(rows, methods)
        axis.set_ylim(len(methods) - 0.5, -0.5)  # every method keeps its row, done or not; first on top
        axis.set_title(f"{fraction:.0%} labels")
        axis.set_xlabel("OA (%), mean ± std over seeds")
        axis.grid(axis="x", alpha=0.3)
    figure.suptitle(f"{config.classify.dataset}: fine-tuned encoders (blue) and baselines (orange)")
    figure.tight_layout()
    return save_atomic(figure, out / "classification_oa.png")


def missing(results: dict) -> list[str]:
    """Which results are not on disk yet, e.g. "faithful_c8: samson"."""
    gaps = [f"{cell}: reconstruction of {scene}" for cell, per_scene in results["reconstruction"].items()
            for scene, metrics in per_scene.items() if metrics is None]
    gaps += [f"{method}: classification at {fraction:.0%}" for method, per_fraction in results["classification"].items()
             for fraction, scores in per_fraction.items() if scores is None]
    return gaps


def example_figures(config, workdir: Path, report: Path) -> list[str]:
    """The false-colour reconstructions of the leave-out width, both decoders, copied beside the page."""
    lines = []
    for scene in names(config.unseen_scenes):
        for decoder in ("faithful", "conditioned"):
            cell = Cell(decoder, config.leave_out_code_width).name
            source = workdir / cell / "reconstruct" / scene / "false_colour.png"
            if source.is_file():
                shutil.copyfile(source, report / f"{cell}_{scene}.png")
                lines.append(f"![{cell} on {scene}]({cell}_{scene}.png)")
    return lines


def page(config, results: dict, figures: list[str]) -> str:
    scenes = names(config.unseen_scenes)
    pretrain = config.pretrain
    gaps = missing(results)
    chosen = chosen_cell(config, results)
    parts = [
        "# The decoder study",
        "",
        "Written by `hsijax study` (see `hsijax/configs/study.py`); every number below is read from the "
        "study's `metrics.json` files.",
        "",
        f"Pretraining: {pretrain.train.steps} steps of {pretrain.train.batch_size} pixels on "
        f"`{pretrain.data.scenes}`, never on the unseen scenes `{config.unseen_scenes}`; the leave-scene-out "
        f"cell leaves out `{config.leave_out}` as well. Classification: `{config.classify.dataset}`, "
        f"{config.classify.seeds} seeds, at most {config.classify.steps} fine-tuning steps with the step "
        "chosen on validation pixels drawn from the training pixels; mean ± std over seeds.",
        "",
        "## Reconstruction of scenes left out of pretraining",
        "",
        *reconstruction_table(results, scenes, chosen),
        "",
        *([chosen_note(config, chosen), ""] if chosen else []),
        *decoder_gap_table(config, results),
        "",
        "![MPSNR per unseen scene](reconstruction_mpsnr.png)",
        "",
        f"![per-band PSNR at c = {config.leave_out_code_width}](per_band_psnr.png)",
        "",
        *figures,
        "",
        f"## Classification of {config.classify.dataset}",
        "",
        f"`{Cell(config.leave_out_decoder, config.leave_out_code_width, tuple(names(config.leave_out))).name}` "
        f"is the leave-scene-out cell: compare it with `{Cell(config.leave_out_decoder, config.leave_out_code_width).name}`, "
        "the same model pretrained with it.",
        "",
        *classification_table(config, results),
        "",
        "![OA per method](classification_oa.png)",
    ]
    if gaps:
        parts += ["", "## Not computed yet", "", *[f"- {gap}" for gap in gaps]]
    return "\n".join(parts) + "\n"


def write_report(config, workdir: Path, report: Path) -> Path:
    """``report/README.md`` with its figures, and ``report/study.json`` with every number."""
    results = collect(config, workdir)
    scenes = names(config.unseen_scenes)
    report.mkdir(parents=True, exist_ok=True)
    reconstruction_figure(results, scenes, report)
    per_band_figure(results, scenes, config.leave_out_code_width, report)
    classification_figure(config, results, report)
    figures = example_figures(config, workdir, report)
    serialisable = {**results, "classification": {m: {str(f): s for f, s in per.items()}
                                                    for m, per in results["classification"].items()}}
    write_json_atomic(report / "study.json", serialisable)
    return write_text_atomic(report / "README.md", page(config, results, figures))


def results_from_json(config, path: Path) -> dict:
    """What `collect` returns, read back from a page's ``study.json`` (in the config's order)."""
    saved = json.loads(Path(path).read_text())
    grid, scenes = [c.name for c in cells(config)], names(config.unseen_scenes)
    return {"reconstruction": {c: {s: saved["reconstruction"][c][s] for s in scenes} for c in grid},
            "seen": {c: saved["seen"][c] for c in grid},
            "classification": {m: {f: saved["classification"][m][str(f)] for f in fractions(config)}
                               for m in [*grid, "scratch", "svm"] if m in saved["classification"]}}


def rewrite_page(config, report: Path) -> Path:
    """``report/README.md`` again from ``report/study.json`` alone (no workdir needed; the figures beside
    the page are kept as they are): how the committed page follows a change to this module."""
    report = Path(report)
    results = results_from_json(config, report / "study.json")
    figures = [f"![{cell} on {scene}]({cell}_{scene}.png)" for scene in names(config.unseen_scenes)
               for decoder in ("faithful", "conditioned")
               if (report / f"{(cell := Cell(decoder, config.leave_out_code_width).name)}_{scene}.png").is_file()]
    return write_text_atomic(report / "README.md", page(config, results, figures))
