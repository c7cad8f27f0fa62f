"""`hsijax grid-pca`: fit the shared-grid PCA (`hsijax.models.linear_code`) on every scene of a
leave-out config that lists its own wavelengths (not a nominal list), plus its spectral library
when that folder exists, and save it -- how the code and the network shipped with hsijax are made
(the card's inputs first: README, "The shared code that ships"):

    rm -rf hsijax/weights/shared_grid_pca hsijax/weights/shared_grid_network
    hsijax grid-pca --output hsijax/weights/shared_grid_pca \
        --network hsijax/weights/shared_grid_network --card hsijax/weights/MODEL_CARD.md \
        --leave-out runs/leave_out_linear --classification runs/eval/grid_ip1 runs/eval/grid_ip5

``--network`` also saves its first ``--network-width`` components as the linear network on the
wavelength grid (`SharedGridPCA.to_model`), which `hsijax.load_pretrained()` loads, and ``--card``
writes that network's model card from what the command measured (each scene's reconstruction),
the ``hsijax leave-out`` workdir of that network (scenes it never saw) and ``hsijax classify``
reports; no number on it is typed by hand.

The fit runs over the mesh of every process (`hsijax.train.grid_fit`: per-device float64 sums,
each process reading its share of each scene through the dataset reader), so one process per host
(`--coordinator`) fits across hosts what one process fits; the first process writes the outputs.

The leave-out config's scenes are all the real ones here (its validation and left-out scenes
included: a shipped code, like shipped weights, is fitted on everything). How well this recipe
reconstructs a sensor it never saw is what ``hsijax leave-out`` measures, each cell fitted without
its scene (the ``grid_pca_library`` rows of docs/leave_out, and docs/leave_out_linear).
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax

from hsijax.data.loading import load_scene, open_scenes, scene_names
from hsijax.data.shared_grid import GRID_POINTS, GRID_STEP_NM, SHARED_GRID_NM
from hsijax.errors import HsijaxError
from hsijax.evaluate.reconstruction import evaluate_reconstruction
from hsijax.experiments.leave_out import library_set
from hsijax.experiments.leave_out_report import reconstruction_results
from hsijax.experiments.model_card import classification_section, read_reports
from hsijax.files import check_output, is_uri, storage_path, write_text_atomic
from hsijax.models.checkpoints import MODEL_CARD, save_model
from hsijax.models.linear_code import SharedGridPCA
from hsijax.models.model import Model
from hsijax.train.grid_fit import fit_on_mesh


def check_new_folder(output, what: str) -> None:
    output = check_output(output, "directory")
    if storage_path(output).exists():
        raise HsijaxError(f"{output}: already exists; grid-pca saves {what} to a new folder")


def fit_grid_pca(config, output, code_width: int = 32, network=None, network_width: int = 16, card=None,
                 classification=(), leave_out=None) -> tuple[SharedGridPCA, dict]:
    """Fit the code on the config's scenes (and library); save it to the new folder ``output`` (local
    or a URI) with its record; with ``network``, its first ``network_width`` components as the linear
    network (a new local folder) and with ``card`` that network's model card. Every input is checked
    before any work; the outputs appear together or not at all."""
    check_new_folder(output, "the code")
    if network is not None:
        if is_uri(network):
            raise HsijaxError(f"{network}: --network writes a local folder")
        check_new_folder(network, "the network")
        if not 1 <= network_width <= code_width:
            raise HsijaxError(f"--network-width {network_width}: must be 1 to --code-width {code_width}")
    if card is not None:
        if network is None:
            raise HsijaxError("--card describes the network: give --network too")
        check_output(card, "file")
    for folder in classification:
        if not (Path(folder) / "metrics.json").is_file():
            raise HsijaxError(f"{folder}: no metrics.json (give the --out folder of hsijax classify)")
    if leave_out is not None and not reconstruction_results(config, Path(leave_out)):
        raise HsijaxError(f"{leave_out}: no finished leave-out cell (give the workdir of hsijax leave-out)")
    data = config.pretrain.data
    datasets = open_scenes(scene_names(data.scenes), data.data_dir, data.imports,
                           rebuild=data.get("rebuild", False), source_dir=data.get("source_dir", ""))  # their own band centres only
    listed = [dataset for dataset in datasets if dataset.wavelengths_nm is not None]
    library = library_set(config)
    pca = fit_on_mesh([*listed, *([library] if library is not None else [])], code_width, seed=config.pretrain.seed)
    with_library = library is not None
    record = {"scenes": [dataset.name for dataset in listed],
              "skipped_without_wavelengths": [dataset.name for dataset in datasets if dataset.wavelengths_nm is None],
              "spectral_library": Path(config.spectral_library).name if with_library else None,
              "library_mixtures": config.library_mixtures if with_library else 0,
              "code_width": code_width, "seed": config.pretrain.seed, "processes": jax.process_count()}
    if jax.process_index() != 0:  # every process fitted the same code; the first writes it
        return pca, record
    pca.save(output, record)
    print(f"grid-pca: fitted on {', '.join(record['scenes'])}"
          + (f" and {config.library_mixtures:,} library mixtures" if with_library else ""), file=sys.stderr)
    if network is None:
        return pca, record
    try:
        model = pca.truncated(network_width).to_model()
        path = Path(save_model(model, network))
        if card is not None:
            size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            scenes = [load_scene(dataset.name, data.data_dir, data.imports,
                                 source_dir=data.get("source_dir", "")) for dataset in listed]
            seen = {scene.name: (scene, evaluate_reconstruction(model, scene)[0]) for scene in scenes}
            unseen = reconstruction_results(config, Path(leave_out)) if leave_out else {}
            text = render_card(model, record, size, seen, unseen, read_reports(classification), path, leave_out)
            write_text_atomic(card, text)
    except BaseException:
        for folder in (output, network):  # the code, the network and its card appear together or not at all
            if storage_path(folder).exists():
                storage_path(folder).rmtree()
        raise
    return pca, record


def render_card(model: Model, record: dict, size_bytes: int, seen: dict, unseen: dict, reports: list[dict],
                path: Path, leave_out) -> str:
    """The linear network's model card: what it is, what it was fitted on and what it scores."""
    config = model.config
    shipped = path.resolve() == MODEL_CARD.parent.joinpath("shared_grid_network").resolve()
    rows = ["| scene | sensor | pixels | bands | wavelengths (nm) | MPSNR (dB) | MSSIM |", "|---|---|---|---|---|---|---|"]
    for name, (scene, metrics) in seen.items():
        wavelengths = scene.wavelengths_nm
        rows.append(f"| {name} | {scene.sensor or '?'} | {scene.cube.shape[0]} × {scene.cube.shape[1]} | "
                    f"{scene.cube.shape[2]} | {min(wavelengths):.0f}–{max(wavelengths):.0f} | "
                    f"{metrics['mpsnr_db']:.2f} | {metrics['mssim']:.3f} |")
    transfer = ["No `--leave-out` workdir was given."]
    if unseen:
        transfer = [f"From `{Path(leave_out).name}` (`hsijax leave-out --config hsijax/configs/leave_out_linear.py`): "
                    "each scene is reconstructed by this recipe fitted without it (and without the validation "
                    "scenes), against the mean spectrum of the scene itself.", "",
                    "| scene never seen | MPSNR (dB) | MSSIM | the scene's mean spectrum (dB) |", "|---|---|---|---|"]
        for name, result in unseen.items():
            network, mean = result["rows"]["network"], result["rows"]["mean_spectrum"]
            transfer.append(f"| {name} | {network['mpsnr_db']:.2f} | {network['mssim']:.3f} | {mean['mpsnr_db']:.2f} |")
        mean_db = sum(r["rows"]["network"]["mpsnr_db"] for r in unseen.values()) / len(unseen)
        transfer += ["", f"Mean over the {len(unseen)} scenes: {mean_db:.2f} dB."]
    library = (f" and {record['library_mixtures']:,} random three-material mixtures of the USGS spectral library "
               f"(`{record['spectral_library']}`, complete ASD spectra, 1 nm)" if record["spectral_library"] else "")
    return "\n".join([
        "# Model card: the shipped shared encoder" if shipped else f"# Model card: {path.name}",
        "",
        ("Loaded by `hsijax.load_pretrained()` and by `--checkpoint pretrained` in every command "
         "(the poster's CNN, the default before it: `load_pretrained(\"poster\")`, `--checkpoint poster`, "
         "[its card](POSTER_MODEL_CARD.md)). " if shipped
         else f"Loaded by `hsijax.load_model(\"{path.name}\")` and `--checkpoint {path.name}`. ")
        + "Written by `hsijax grid-pca --network` (`hsijax/experiments/grid_pca.py`).",
        "",
        "## Model",
        "",
        f"The linear network on the shared wavelength grid (`{config.kind}`): {GRID_POINTS} points every "
        f"{GRID_STEP_NM:.0f} nm, {SHARED_GRID_NM[0]:.0f}–{SHARED_GRID_NM[-1]:.0f} nm; code width "
        f"{config.code_width}; band buckets {tuple(config.buckets)} (1 to {max(config.buckets)} bands): "
        f"{model.parameter_count:,} parameters (a mean and {config.code_width} basis vectors on the grid), "
        f"{size_bytes / 1e6:.2f} MB on disk. A spectrum is resampled onto the grid points its sensor covers (by its "
        "band centres), its code is the least-squares fit of those points by the basis, and the decoder is the "
        "mean plus the code times the basis, resampled back to the band centres. It is the first "
        f"{config.code_width} principal components of the shipped shared-grid PCA "
        "(`hsijax.SharedGridPCA.load_pretrained`) in network form, whitened (each basis vector times its "
        "component's standard deviation over the fitted spectra, so each code number has unit variance there; "
        "the same reconstructions; the code's own numbers are these times each component's `scale`), usable by "
        "`hsijax.encode`, every `--checkpoint` and `SpectralClassifier.from_pretrained`. For spectra that share "
        "their band centres it folds into one matrix and an offset, computed once per list of band centres, so "
        "encoding is one matrix product per block of pixels.",
        "",
        "## Fitted on",
        "",
        f"{len(record['scenes'])} scenes with known band centres{library}, each scene weighted equally "
        f"(up to 20,000 pixels of each, seed {record['seed']}), every scene min–max normalised with its own range. "
        + (f"Left out for lack of band centres: {', '.join(record['skipped_without_wavelengths'])}."
           if record["skipped_without_wavelengths"] else ""),
        "",
        "Whole-scene reconstruction of each (a scene it was fitted on):",
        "",
        *rows,
        "",
        "## Sensors it never saw",
        "",
        *transfer,
        "",
        "## Classification",
        "",
        *classification_section(reports, "hsijax grid-pca"),
        "## Known limits",
        "",
        "- It needs each spectrum's band centres: spectra given without them are refused (`wavelengths=` in "
        "Python, `--wavelengths` on every command: a file, a sensor table or `linspace:FIRST:LAST`); it never "
        "assumes where the bands lie.",
        f"- Linear: nonlinear structure a scene's own network would learn is not in its {config.code_width} numbers; "
        "the scene's own PCA (fitted on it) reconstructs it better still (docs/leave_out).",
        "- A spectrum is encoded alone; more than the largest bucket's bands is refused.",
        "",
    ])
