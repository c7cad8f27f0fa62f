"""The few-label page (docs/few_label/README.md): tables of every method against the SVM on spectra,
paired over the same splits, and the maps; every number read from the JSON files
`hsijax.experiments.few_label` wrote."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np

from hsijax.data.loading import scene_names as names
from hsijax.evaluate.figures import pyplot, save_atomic
from hsijax.experiments.few_label import fraction_folder
from hsijax.files import write_text_atomic

BASELINE = "svm"
POSTER = {0.01: 52.19, 0.05: 77.52}  # the poster's Indian Pines OA (%), its pretrained CNN
TITLES = {
    "svm": "RBF SVM on spectra (the baseline)",
    "linear_codes": "linear probe on the checkpoint's codes (c = 16)",
    "svm_codes": "RBF SVM on the checkpoint's codes (c = 16)",
    "svm_grid_pca_8": "RBF SVM on the shipped grid PCA, c = 8",
    "svm_grid_pca_24": "RBF SVM on the shipped grid PCA, c = 24",
    "svm_grid_pca_32": "RBF SVM on the shipped grid PCA, c = 32",
    "svm_scene_pca": "RBF SVM on the scene's own PCA, c = 32 (adapted, not shared)",
    "map": "**`hsijax map`**: encoder and head chosen by cross-validation",
    "label_spreading": "label spreading over every pixel's codes",
    "self_training": "`hsijax map`'s choice, self-trained on the scene's unlabelled pixels",
    "fine_tuned": "shared code's network fine-tuned (standardised, regularised, refitted)",
    "fine_tuned_ensemble": "the same, an ensemble of 3 refits over seeds",
    "poster_cnn": "the poster's CNN, fine-tuned (its recipe)",
    "scratch": "the poster's CNN from random weights",
    "spatial_svm": "spectra + their window means, RBF SVM",
    "spatial_codes": "codes + their window means, RBF SVM",
    "svm_smoothed": "SVM on spectra, majority-filtered",
    "map_smoothed": "`hsijax map`, majority-filtered",
    "spatial_svm_smoothed": "spectra + window means, SVM, majority-filtered",
    "spatial_codes_smoothed": "codes + window means, SVM, majority-filtered",
    "cnn_spectra": "2-D CNN on 9 × 9 patches of the spectra",
    "cnn_codes": "2-D CNN on 9 × 9 patches of the codes",
}
SPLIT_TITLES = {"random": "random per-class split", "blocks": "spatially disjoint split (8 × 8 blocks)"}


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def results(config, workdir: Path) -> dict:
    """{(scene, split, fraction): {method: result}} for what is done."""
    found = {}
    for scene in names(config.scenes):
        for kind in names(config.splits):
            for fraction in map(float, names(config.fractions)):
                folder = workdir / scene / kind / fraction_folder(fraction)
                done = {path.stem: _read(path) for path in sorted(folder.glob("*.json"))}
                if done:
                    found[(scene, kind, fraction)] = done
    return found


def oas(result: dict) -> np.ndarray:
    return np.array([run["oa"] for run in result["runs"]]) * 100


def mean_std(values: np.ndarray) -> str:
    std = values.std(ddof=1) if len(values) > 1 else 0.0
    return f"{values.mean():.2f} ± {std:.2f}"


def paired(values: np.ndarray, baseline: np.ndarray) -> tuple[float, float]:
    """(mean paired difference, half-width of its 95 % t interval) over seeds."""
    from scipy.stats import t

    difference = values - baseline
    if len(difference) < 2:
        return float(difference.mean()), float("nan")
    half = t.ppf(0.975, len(difference) - 1) * difference.std(ddof=1) / np.sqrt(len(difference))
    return float(difference.mean()), float(half)


def difference_cell(result: dict, baseline: dict | None) -> str:
    if baseline is None or len(result["runs"]) != len(baseline["runs"]):
        return "–"
    mean, half = paired(oas(result), oas(baseline))
    return f"{mean:+.2f}" if np.isnan(half) else f"{mean:+.2f} ± {half:.2f}"


def method_table(found: dict, columns: list[tuple], methods: list[str]) -> list[str]:
    """Rows: methods; per column (scene, split, fraction): OA mean ± std, and the paired difference
    to the SVM on spectra with its 95 % interval."""
    header = ["method"]
    for scene, kind, fraction in columns:
        header += [f"{scene} {fraction:.0%}: OA (%)", "Δ vs SVM"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method in methods:
        cells = [TITLES.get(method, method)]
        present = False
        for column in columns:
            done = found.get(column, {})
            result = done.get(method)
            if result is None:
                cells += ["–", "–"]
                continue
            present = True
            cells += [mean_std(oas(result)),
                      "baseline" if method == BASELINE else difference_cell(result, done.get(BASELINE))]
        if present:
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def seeds_note(found: dict) -> str:
    counts = sorted({len(result["runs"]) for done in found.values() for result in done.values()})
    return ", ".join(map(str, counts))


def choices(found: dict, method: str) -> list[str]:
    """What cross-validation chose for ``method`` in each column, counted over seeds."""
    lines = []
    for (scene, kind, fraction), done in found.items():
        if method not in done:
            continue
        counter = collections.Counter()
        for run in done[method]["runs"]:
            choice = run["choice"]
            parts = [str(choice[key]) for key in ("encoder", "head", "features", "window", "filter") if key in choice]
            parts += [f"{choice[key]} {unit}" for key, unit in (("rounds", "rounds"), ("step", "steps")) if key in choice]
            counter[", ".join(parts)] += 1
        chosen = "; ".join(f"{text} ({count}×)" for text, count in counter.most_common())
        lines.append(f"- {scene}, {SPLIT_TITLES[kind]}, {fraction:.0%}: {chosen}")
    return lines


def goal_lines(found: dict, config) -> list[str]:
    """The issue's goals, each with what was measured."""
    lines = []
    for (scene, kind, fraction), done in sorted(found.items()):
        if kind != "random" or "map" not in done or BASELINE not in done:
            continue
        mean, half = paired(oas(done["map"]), oas(done[BASELINE]))
        verdict = "met" if mean >= 2 else f"missed by {2 - mean:.2f} points"
        lines.append(f"- {scene} {fraction:.0%}, `map` ≥ SVM + 2 (paired mean): {mean:+.2f} ± {half:.2f} — {verdict}")
    for fraction, target in ((0.01, 60.0), (0.05, 77.5)):
        done = found.get(("indian_pines", "random", fraction), {})
        if "map" in done:
            value = oas(done["map"]).mean()
            verdict = "met" if value >= target else f"missed by {target - value:.2f} points"
            lines.append(f"- indian_pines {fraction:.0%}, `map` ≥ {target:g} %: {value:.2f} % — {verdict}")
    done = found.get(("indian_pines", "random", 0.05), {})
    spatial = {m: oas(done[m]).mean() for m in names(config.spatial) if m in done}
    if spatial:
        best = max(spatial, key=spatial.get)
        verdict = "met" if spatial[best] >= 95 else f"missed by {95 - spatial[best]:.2f} points"
        lines.append(f"- indian_pines 5 %, spatial ≥ 95 % on the random split: best {best} {spatial[best]:.2f} % "
                     f"— {verdict}")
    for codes, spectra, what in (("spatial_codes", "spatial_svm", "window means + SVM"),
                                 ("cnn_codes", "cnn_spectra", "2-D CNN on patches")):
        for (scene, kind, fraction), done in sorted(found.items()):
            if kind == "blocks" and codes in done and spectra in done:
                mean, half = paired(oas(done[codes]), oas(done[spectra]))
                verdict = "met" if mean >= 0 else f"missed by {-mean:.2f} points"
                lines.append(f"- {scene} {fraction:.0%}, disjoint split, codes ≥ spectra ({what}): "
                             f"{mean:+.2f} ± {half:.2f} — {verdict}")
    return lines


def map_figure(config, workdir: Path, report_dir: Path, scene: str, fraction: float, methods: list[str],
               labels: np.ndarray, shape) -> Path | None:
    """Seed 0's maps of every pixel (the ground truth on its labelled pixels first)."""
    folder = workdir / scene / "random" / fraction_folder(fraction)
    panels = {"ground truth": labels}
    for method in methods:
        if (folder / f"{method}.npy").is_file():
            panels[method] = np.load(folder / f"{method}.npy")
    if len(panels) == 1:
        return None
    figure, axes = pyplot().subplots(1, len(panels), figsize=(3.0 * len(panels), 3.3), squeeze=False)
    top = max(int(labels.max()), 1)
    for axis, (title, values) in zip(axes[0], panels.items()):
        image = values.reshape(shape)
        axis.imshow(np.ma.masked_equal(image, 0), cmap="tab20", interpolation="nearest", vmin=1, vmax=top)
        axis.set_title(title, fontsize=9)
        axis.axis("off")
    figure.suptitle(f"{scene}, {fraction:.0%} labels, seed 0", fontsize=10)
    figure.tight_layout()
    return save_atomic(figure, report_dir / f"{scene}_{fraction_folder(fraction)}_maps.png")


def figures(config, workdir: Path, report_dir: Path, found: dict) -> list[str]:
    from hsijax.data.loading import load_scene

    lines = []
    largest = max(map(float, names(config.fractions)))
    for scene in names(config.scenes):
        if (scene, "random", largest) not in found:
            continue
        data = config.data
        loaded = load_scene(scene, data.data_dir, data.imports, source_dir=data.source_dir)
        if min(loaded.cube.shape[:2]) < 2:
            continue
        shown = ["svm", "map", "spatial_svm_smoothed", "spatial_codes_smoothed", "cnn_codes"]
        path = map_figure(config, workdir, report_dir, scene, largest, shown, loaded.labels.reshape(-1),
                          loaded.cube.shape[:2])
        if path:
            lines += [f"![{scene} maps]({path.name})", ""]
    return lines


def render(config, workdir: Path, report_dir: Path) -> str:
    found = results(config, workdir)
    fractions = list(map(float, names(config.fractions)))
    per_pixel = names(config.per_pixel)
    spatial = names(config.baselines) + names(config.spatial)
    lines = [
        "# Few labels: which classifier, on which code",
        "",
        f"Written by `hsijax few-label --workdir {workdir} --report {report_dir}` "
        "(`hsijax/experiments/few_label.py`, config `hsijax/configs/few_label.py`); what is not done yet shows as –.",
        f"OA on the test pixels, mean ± std over seeds ({seeds_note(found)}); Δ: the paired difference to the "
        "SVM on spectra over the same splits, with the half-width of its 95 % t interval. Every choice (encoder, "
        "head, C and gamma, window, filter size, graph, training step) was made on the training pixels alone, "
        "by 3-fold cross-validation or a validation part; test labels chose nothing.",
        "",
        "Label-free use of the scene: spectra are min–max normalised over the scene, codes standardised over "
        "every pixel of it, the scene PCA and label spreading use all its pixels. The shipped code "
        "(`--checkpoint pretrained`, the grid PCA) was fitted, without labels, on pixels of Indian Pines and "
        "Houston 2018 among eight scenes (hsijax/weights/MODEL_CARD.md); Houston 2013's CASI spectra it never saw.",
        "",
        "## Per pixel, random split",
        "",
    ]
    for scene in names(config.scenes):
        columns = [(scene, "random", f) for f in fractions if (scene, "random", f) in found]
        if columns:
            lines += [f"### {scene}", ""] + method_table(found, columns, per_pixel) + [""]
    if ("indian_pines", "random", 0.05) in found:
        lines += [f"The poster (Indian Pines, its fine-tuned CNN): {POSTER[0.01]} % at 1 %, {POSTER[0.05]} % at 5 %.", ""]
    lines += ["## With spatial context", "",
              "A pixel's neighbourhood, reported apart from the per-pixel methods. On the random split a test "
              "pixel's window holds training pixels, so these scores are optimistic; on the spatially disjoint "
              "split training pixels come in whole 8 × 8 blocks, test pixels lie beyond the largest window's radius "
              "from them, and cross-validation keeps blocks whole.", ""]
    for scene in names(config.scenes):
        columns = [(scene, kind, f) for kind in names(config.splits) for f in fractions
                   if any(m in found.get((scene, kind, f), {}) for m in names(config.spatial))]
        if columns:
            lines += [f"### {scene}", ""]
            for kind in names(config.splits):
                chosen = [c for c in columns if c[1] == kind]
                if chosen:
                    lines += [f"{SPLIT_TITLES[kind]}:", ""] + method_table(found, chosen, spatial) + [""]
    lines += ["## What cross-validation chose", "", "`map` (encoder, head):"] + choices(found, "map") + [""]
    lines += ["`spatial_codes_smoothed` (features, windows, filter):"] + choices(found, "spatial_codes_smoothed") + [""]
    lines += ["`spatial_svm_smoothed` (features, windows, filter):"] + choices(found, "spatial_svm_smoothed") + [""]
    lines += ["`self_training` (encoder, head, rounds of pseudo-labels; 0 rounds is `map` itself):"] + \
        choices(found, "self_training") + [""]
    lines += ["`cnn_codes` (features, training steps kept):"] + choices(found, "cnn_codes") + [""]
    lines += ["## Against the goals", ""] + goal_lines(found, config) + [""]
    lines += ["## Maps", "", "Seed 0, every pixel of the scene classified; the ground truth on its labelled pixels.",
              ""] + figures(config, workdir, report_dir, found)
    return "\n".join(lines).rstrip() + "\n"


def write_report(config, workdir, report_dir) -> Path:
    workdir, report_dir = Path(workdir).expanduser(), Path(report_dir).expanduser()
    report_dir.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(report_dir / "README.md", render(config, workdir, report_dir))
