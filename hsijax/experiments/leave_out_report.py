"""The leave-sensor-out page (docs/leave_out/README.md): tables and a figure, every number read
from the JSON files `hsijax.experiments.leave_out` wrote."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hsijax.data.loading import scene_names as names
from hsijax.evaluate.figures import save_atomic
from hsijax.models.networks import config_from_dict


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def reconstruction_results(config, workdir: Path) -> dict[str, dict]:
    """{left-out scene: its reconstruction result} for the cells that are done."""
    results = {}
    for name in names(config.left_out):
        result = _read(workdir / f"without_{name}" / "reconstruct" / f"{name}.json")
        if result:
            results[name] = result
    return results


def validation_results(config, workdir: Path) -> dict[str, list[dict]]:
    """{validation scene: [its result in each cell]}."""
    return {name: [r for left_out in names(config.left_out)
                   if (r := _read(workdir / f"without_{left_out}" / "reconstruct" / f"{name}.json"))]
            for name in names(config.validation_scenes)}


FEATURE_ORDER = ("spectra", "network codes", "grid PCA codes", "grid PCA + library codes")
CHOSEN = "†"  # the network's decoder was chosen on this scene: not a held-out result


def study_scenes(pretrain) -> list[str]:
    """The scenes that chose the page's network: the decoder study (`hsijax/configs/study.py`) chose
    the poster CNN's decoder (its ``leave_out_decoder``: the shipped poster weights' and the
    `leave_out` config's) by MPSNR on its unseen scenes. [] for any other network or decoder."""
    from hsijax.configs import study

    network, chosen = config_from_dict(dict(pretrain.model)), study.get_config()
    if network.kind != "poster_cnn" or network.decoder != chosen.leave_out_decoder:
        return []
    return names(chosen.unseen_scenes)


def study_choice(pretrain, scenes) -> list[str]:
    """Which of ``scenes`` chose the page's network's decoder (`study_scenes`)."""
    chosen = set(study_scenes(pretrain))
    return [scene for scene in scenes if scene in chosen]


def chosen_note(pretrain, chosen: list[str], what: str) -> str:
    """The footnote under a table with a marked row."""
    decoder = config_from_dict(dict(pretrain.model)).decoder
    return (f"{CHOSEN} The network's {decoder} decoder was chosen by the decoder study (`hsijax study`, "
            f"hsijax/configs/study.py) by reconstruction MPSNR on {', '.join(f'`{s}`' for s in chosen)}, "
            f"which {what}: not a held-out result.")


ROW_TITLES = {"network": "shared encoder: {network} (c = {c})", "mean_spectrum": "the scene's mean spectrum"}


def row_title(key: str, network_width: int, network: str = "network") -> str:
    if key in ROW_TITLES:
        return ROW_TITLES[key].format(c=network_width, network=network)
    kind, width = key.rsplit("_c", 1)
    return {"grid_pca": "shared wavelength-grid PCA", "grid_pca_library": "shared grid PCA, scenes + USGS library",
            "own_pca": "the scene's own PCA (transductive)"}[kind] + f" (c = {width})"


def row_order(results: dict[str, dict]) -> list[str]:
    """The network first, then the linear codes by kind and width, the mean spectrum last."""
    keys = {key for result in results.values() for key in result["rows"]}
    kinds = {"network": 0, "grid_pca": 1, "grid_pca_library": 2, "own_pca": 3, "mean_spectrum": 4}
    rank = lambda key: (kinds[key.rsplit("_c", 1)[0]] if "_c" in key else kinds[key],
                        int(key.rsplit("_c", 1)[1]) if "_c" in key else 0)
    return sorted(keys, key=rank)


def reconstruction_table(results: dict[str, dict], network_width: int, network: str = "network",
                         pretrain=None) -> list[str]:
    """``pretrain``: the page's pretraining config, to mark the network's row when the decoder study
    chose its decoder on some of these scenes (`study_choice`)."""
    if not results:
        return ["(no cell finished yet)"]
    chosen = study_choice(pretrain, list(results)) if pretrain is not None else []
    scenes = list(results)
    keys = row_order(results)
    lines = ["| MPSNR dB (MSSIM) | " + " | ".join(scenes) + " | mean |", "|---" * (len(scenes) + 2) + "|"]
    for key in keys:
        values = [results[s]["rows"].get(key) for s in scenes]
        cells = [f"{v['mpsnr_db']:.2f} ({v['mssim']:.3f})" if v else "—" for v in values]
        known = [v["mpsnr_db"] for v in values if v]
        mean = f"{np.mean(known):.2f}" if len(known) == len(values) else "—"
        title = row_title(key, network_width, network) + (f" {CHOSEN}" if key == "network" and chosen else "")
        lines.append(f"| {title} | " + " | ".join(cells) + f" | {mean} |")
    if chosen:
        lines += ["", chosen_note(pretrain, chosen, "are also test scenes here (their columns and the mean)")]
    return lines


def goals(results: dict[str, dict], network_width: int, marker: str = "") -> list[str]:
    """``marker``: after each number of the network's (`CHOSEN` when the study chose its decoder on
    some of the scenes)."""
    if len(results) == 0:
        return []
    network = np.mean([r["rows"]["network"]["mpsnr_db"] for r in results.values()])
    lines = [f"- Unseen-sensor MPSNR at c = {network_width} (goal ≥ 40 dB): {network:.2f} dB{marker} "
             f"({'met' if network >= 40 else f'missed by {40 - network:.2f} dB'})."]
    for prefix, what in (("grid_pca", "the shared wavelength-grid PCA"),
                         ("grid_pca_library", "the grid PCA fitted with the USGS library")):
        grid = f"{prefix}_c{network_width}"
        known = [r for r in results.values() if grid in r["rows"]]
        if len(known) == len(results):
            linear = np.mean([r["rows"][grid]["mpsnr_db"] for r in known])
            lines.append(f"- For comparison, {what} alone: {linear:.2f} dB at c = {network_width} "
                         f"({'above' if linear >= 40 else 'below'} the 40-dB level).")
        if known:
            margin = np.mean([r["rows"]["network"]["mpsnr_db"] - r["rows"][grid]["mpsnr_db"] for r in known])
            lines.append(f"- Margin over {what} at c = {network_width} (goal ≥ +3 dB): {margin:+.2f} dB{marker} "
                         f"({'met' if margin >= 3 else f'missed by {3 - margin:.2f} dB'}).")
    return lines


def codes_table(workdir: Path, config) -> list[str]:
    lines = []
    for left_out in names(config.left_out):
        for path in sorted((workdir / f"without_{left_out}" / "codes_vs_spectra").glob("*.json")):
            result = _read(path)
            lines += [f"{result['dataset']}, {result['fraction']:.0%} labels, {result['seeds']} seeds "
                      f"(model pretrained without {left_out}), OA % mean ± std:", "",
                      "| features | " + " | ".join(result["results"]) + " |",
                      "|---" * (len(result["results"]) + 1) + "|"]
            present = next(iter(result["results"].values()))
            feature_names = [f for f in FEATURE_ORDER if f in present] + [f for f in present if f not in FEATURE_ORDER]
            chosen = study_choice(config.pretrain, [result["dataset"]])
            for feature in feature_names:
                cells = [f"{100 * by[feature]['oa']['mean']:.2f} ± {100 * by[feature]['oa']['std']:.2f}"
                         for by in result["results"].values()]
                title = f"{feature} {CHOSEN}" if feature == "network codes" and chosen else feature
                lines.append(f"| {title} | " + " | ".join(cells) + " |")
            if chosen:
                lines += ["", chosen_note(config.pretrain, study_scenes(config.pretrain),
                                          f"include this table's `{result['dataset']}` (its pixels, not its labels)")]
            lines.append("")
    return lines or ["(not run yet)"]


def codes_goal(workdir: Path, config) -> list[str]:
    """How often each kind of code matches or beats the spectra under the SVM (the goal: always)."""
    cases = [_read(path) for left_out in names(config.left_out)
             for path in sorted((workdir / f"without_{left_out}" / "codes_vs_spectra").glob("*.json"))]
    if not cases:
        return []
    lines = []
    for feature in FEATURE_ORDER[1:]:
        known = [c for c in cases if feature in c["results"]["svm"]]
        wins = [c for c in known if c["results"]["svm"][feature]["oa"]["mean"]
                >= c["results"]["svm"]["spectra"]["oa"]["mean"]]
        if known:
            lines.append(f"- SVM on {feature} ≥ on spectra (goal: every scene, 1 % and 5 %): {len(wins)} of "
                         f"{len(known)} cases ({'met' if len(wins) == len(known) else 'missed'}).")
    return lines


def anomaly_table(workdir: Path) -> list[str]:
    result = _read(workdir / "anomaly_rx_auc.json")
    if not result:
        return ["(not run yet)"]
    lines = ["| scene | RX on spectra | RX on codes |", "|---|---|---|"]
    for name, row in result["auc"].items():
        lines.append(f"| {name} | {row['spectra']:.4f} | {row['network codes']:.4f} |")
    means = [np.mean([row[k] for row in result["auc"].values()]) for k in ("spectra", "network codes")]
    lines.append(f"| mean | {means[0]:.4f} | {means[1]:.4f} |")
    lines += ["", f"Goal, mean AUC on codes ≥ on spectra: {'met' if means[1] >= means[0] else 'missed'} "
                  f"({means[1] - means[0]:+.4f})."]
    return lines


POSTER_GAIN = {0.01: (52.19, 8.8), 0.05: (77.52, 6.2)}  # the poster's OA and its gain over scratch


def fine_tune_table(workdir: Path) -> list[str]:
    from hsijax.evaluate.classification import format_classification

    lines = []
    for path in sorted((workdir / "fine_tune").glob("*/metrics.json")):
        report = _read(path)
        methods = {m: 100 * v["oa"]["mean"] for m, v in report["methods"].items()}
        lines += [format_classification(report), ""]
        if {"pretrained", "scratch", "svm"} <= set(methods):
            gain, margin = methods["pretrained"] - methods["scratch"], methods["pretrained"] - methods["svm"]
            poster = POSTER_GAIN.get(round(report["fraction"], 4))
            lines += [f"Goal at {report['fraction']:.0%}, pretrained ≥ scratch + 5 points: {gain:+.2f} "
                      f"({'met' if gain >= 5 else f'missed by {5 - gain:.2f}'}); pretrained ≥ SVM: {margin:+.2f} "
                      f"({'met' if margin >= 0 else f'missed by {-margin:.2f}'})"
                      + (f"; the poster: {poster[0]:.2f} % OA, +{poster[1]} over scratch." if poster else "."), ""]
    return lines or ["(not run yet)"]


def reconstruction_figure(results: dict[str, dict], report_dir: Path, network_width: int) -> Path | None:
    """One panel per left-out scene: MPSNR against code width for each linear code, the network at
    its width, and the scene's mean spectrum as a floor."""
    if not results:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(results), figsize=(3.6 * len(results), 3.6), squeeze=False, sharey=True)
    styles = {"grid_pca": ("shared grid PCA", "tab:blue"), "grid_pca_library": ("grid PCA + library", "tab:green"),
              "own_pca": ("own PCA (transductive)", "tab:gray")}
    for axis, (scene, result) in zip(axes[0], results.items()):
        rows = result["rows"]
        for prefix, (label, colour) in styles.items():
            widths = sorted(int(k.rsplit("_c", 1)[1]) for k in rows if k.rsplit("_c", 1)[0] == prefix)
            if widths:
                axis.plot(widths, [rows[f"{prefix}_c{w}"]["mpsnr_db"] for w in widths], "o-", color=colour, label=label)
        axis.plot([network_width], [rows["network"]["mpsnr_db"]], "s", color="tab:red", markersize=9,
                  label="shared encoder (network)")
        axis.axhline(rows["mean_spectrum"]["mpsnr_db"], color="black", linestyle="--", linewidth=1,
                     label="the scene's mean spectrum")
        axis.set_title(scene)
        axis.set_xlabel("code width c")
        axis.set_xscale("log", base=2)
        axis.set_xticks([8, 16, 32], ["8", "16", "32"])
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("MPSNR (dB)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    figure.suptitle("Reconstruction of scenes left out of pretraining")
    figure.tight_layout(rect=(0, 0.12, 1, 1))
    return save_atomic(figure, report_dir / "reconstruction.png")


def network_description(pretrain) -> str:
    """What the page's network is and how each cell got it."""
    network = config_from_dict(dict(pretrain.model))
    if network.folds_per_sensor:
        return (f"{network.description} (`--config leave_out:{network.kind}`, what `hsijax.load_pretrained()` "
                "ships), fitted in closed form by its shipping recipe: the grid PCA of the pretraining scenes plus "
                "the USGS library below")
    return f"{network.description} (`{network.kind}`), {pretrain.train.steps} steps of {pretrain.train.batch_size} pixels"


def library_use(pretrain) -> str:
    if config_from_dict(dict(pretrain.model)).folds_per_sensor:
        return "which the linear network is fitted on as well (so its rows and that PCA's agree, up to float32)"
    return "which the network does not see"


def render(config, workdir: Path, report_dir: Path) -> str:
    width = int(config.pretrain.model.code_width)
    results = reconstruction_results(config, workdir)
    figure = reconstruction_figure(results, report_dir, width)
    pretrain = config.pretrain
    lines = [
        "# Leave-sensor-out evaluation",
        "",
        "Written by `hsijax leave-out` (`hsijax/experiments/leave_out.py`; the configs `hsijax/configs/leave_out.py` "
        "and `leave_out_linear.py`); every number is read from the command's JSON files.",
        "",
        f"Each column is a scene pretraining never saw: {network_description(pretrain)}, on "
        f"`{pretrain.data.scenes}` minus that scene and minus the validation scenes "
        f"`{config.validation_scenes}`. The shared wavelength-grid PCA is fitted on the same pretraining scenes "
        "(those with wavelengths), resampled onto one 5-nm grid; the second grid PCA adds the USGS spectral library "
        f"(`{Path(config.spectral_library).name}`, complete ASD spectra and {config.library_mixtures:,} random "
        f"three-material mixtures), {library_use(pretrain)}; own PCA is fitted on the scene itself.",
        "",
        "## Reconstruction",
        "",
        *reconstruction_table(results, width, config_from_dict(dict(pretrain.model)).description, pretrain),
        "",
        *([f"![MPSNR by left-out scene]({figure.name})", ""] if figure else []),
        "Goals:",
        "",
        *goals(results, width, f" {CHOSEN}" if study_choice(pretrain, list(results)) else ""),
        "",
        "## Validation scenes (what models are chosen on)",
        "",
    ]
    for name, cells in validation_results(config, workdir).items():
        if cells:
            network = np.mean([c["rows"]["network"]["mpsnr_db"] for c in cells])
            versus = ""
            for prefix, what in (("grid_pca", "grid PCA"), ("grid_pca_library", "grid PCA + library")):
                row = f"{prefix}_c{width}"
                values = [c["rows"][row]["mpsnr_db"] for c in cells if row in c["rows"]]
                versus += f", {what} c = {width} {np.mean(values):.2f} dB" if values else ""
            lines.append(f"- {name}: network {network:.2f} dB{versus} (mean over {len(cells)} cells)")
    lines += ["", "## Frozen codes vs raw spectra (same classifier)", "",
              "Houston 2013: the 2,832 official training spectra (CASI, 144 bands) only, so the same few-label "
              "splits over seeds stand in for cross-validation; Houston 2018: its 0.5-m labels brought to the "
              "1-m image by block majority.", "", *codes_table(workdir, config), *codes_goal(workdir, config), "",
              "## RX anomaly detection (AUC)", "", *anomaly_table(workdir), "",
              f"## Fine-tuned vs scratch vs SVM ({config.classify.dataset}, model pretrained without it)", "",
              *fine_tune_table(workdir), ""]
    return "\n".join(lines)
