"""`hsijax export`: a pretraining run's model saved alone, and its model card, written from the run's
own records: its training config, its last evaluation, the metadata of each scene it saw, and
``hsijax classify`` reports. No number on the card is typed by hand, so re-exporting after a new run
keeps the card true.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import orbax.checkpoint as ocp

from hsijax.data.loading import open_scenes
from hsijax.errors import HsijaxError
from hsijax.evaluate.classification import SPATIAL_METHODS, format_classification
from hsijax.files import check_output, is_uri, write_text_atomic
from hsijax.models.checkpoints import SHIPPED, load_model_and_step, save_model
from hsijax.models.model import Model
from hsijax.train.metrics_log import read_metrics


def export(checkpoint, output: Path, card: Path | None = None,
           classification: list[Path] = ()) -> tuple[Model, Path, int, Path | None]:
    """Save the model of ``checkpoint``'s newest readable step alone in the new folder ``output``
    (parameters, config, checksums; no optimiser state), and with ``card`` its model card, with the
    scores of the ``hsijax classify --out`` folders ``classification``: (model, folder, size in
    bytes, card).

    The model and its card appear together or not at all; every input is checked before anything
    is written.
    """
    if is_uri(output):
        raise HsijaxError(f"{output}: export writes a local folder (copy it to object storage afterwards)")
    output = check_output(output, "directory")
    if output.exists():
        raise HsijaxError(f"{output}: already exists; export writes a new folder")
    if card:
        check_output(card, "file")
    for folder in classification:
        if not (Path(folder) / "metrics.json").is_file():
            raise HsijaxError(f"{folder}: no metrics.json (give the --out folder of hsijax classify)")
    model, step = load_model_and_step(checkpoint)
    if card and not (step / "train_config").is_dir():
        raise HsijaxError(f"{step}: no training record for a model card; give the pretraining workdir")
    path = Path(save_model(model, output))
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    if not card:
        return model, path, size, None
    try:
        text = render(model, step.parents[1], step, read_reports(classification), size, path)
    except BaseException:
        shutil.rmtree(path)  # the model and its card appear together or not at all
        raise
    return model, path, size, write_text_atomic(card, text)


def training_record(step_directory: Path) -> dict:
    """The whole training config saved with a checkpoint step."""
    return ocp.JsonCheckpointHandler().restore(step_directory / "train_config")


def scene_rows(train: dict, final_eval: dict) -> list[str]:
    """One row per pretraining scene: sensor, size, bands, held-out MPSNR at the last evaluation."""
    names = train["data"]["scenes"].split(",")
    rows = ["| scene | sensor | pixels | bands | held-out MPSNR (dB) |", "|---|---|---|---|---|"]
    for name, dataset in zip(names, open_scenes(names, train["data"]["data_dir"], train["data"]["imports"],
                                                 source_dir=train["data"].get("source_dir", ""))):
        meta = dataset.metadata
        psnr = final_eval.get(f"mpsnr_db/{name}")
        rows.append(f"| {name} | {meta['sensor'] or '?'} | {meta['height']} × {meta['width']} | {meta['bands']} | "
                    f"{'—' if psnr is None else f'{psnr:.2f}'} |")
    return rows


def classification_section(reports: list[dict], command: str = "hsijax export") -> list[str]:
    """One table per report, after a line on what each method is."""
    if not reports:
        return [f"No classification report was given to `{command} --classification`.", ""]
    methods = {method for report in reports for method in report["methods"]}
    lines = ["`pretrained`: these weights' encoder fine-tuned with a head on single spectra, the poster's "
             "classifier (`scratch`: the same network from random weights; `svm`: an RBF SVM on the spectra)."]
    if methods & set(SPATIAL_METHODS):
        lines[0] += (" `spatial_pretrained`, `spatial_svm`: the spatial variant (`hsijax.evaluate.spatial`), each pixel "
                     "beside its neighbourhood's mean of frozen codes or of spectra, RBF SVM; its own method, "
                     "optimistic next to the spectral ones (test pixels share windows with training pixels).")
    lines.append("")
    for report in reports:
        caption, table = format_classification(report).split("\n", 1)
        lines += [caption + ":", "", table, ""]  # a Markdown table must not touch the line above it
    return lines


def render(model: Model, workdir: Path, step_directory: Path, reports: list[dict], size_bytes: int,
           exported_to: Path) -> str:
    train = training_record(step_directory)
    records = read_metrics(workdir)
    evals = [r for r in records if r["kind"] == "eval"]
    final_eval = evals[-1] if evals else {}
    rates = [r["pixels_per_second"] for r in records if r["kind"] == "train" and "pixels_per_second" in r]
    config, optim, steps = model.config, train["optim"], train["train"]
    shipped = next((name for name, folder in SHIPPED.items() if exported_to.resolve() == folder.resolve()), None)
    return "\n".join([
        f"# Model card: {f'the shipped {shipped!r} model' if shipped else exported_to.name}",
        "",
        (f"Loaded by `hsijax.load_pretrained(\"{shipped}\")` and by `--checkpoint {shipped}` in every command. "
         if shipped else f"Loaded by `hsijax.load_model(\"{exported_to.name}\")` and `--checkpoint {exported_to.name}`. ")
        + f"Written by `hsijax export` from `{workdir.name}` step {step_directory.name}.",
        "",
        "## Model",
        "",
        f"{config.description[0].upper()}{config.description[1:]} (`{config.kind}`), code width {config.code_width}, "
        + (f"encoder widths {tuple(config.widths)}, " if hasattr(config, "widths") else "")
        + f"band buckets {tuple(config.buckets)} (1 to {max(config.buckets)} "
        f"bands): {model.parameter_count:,} parameters, {size_bytes / 1e6:.2f} MB on disk (parameters only, "
        "with SHA-256 checksums)."
        + (" Wavelength-blind: it accepts band centres and ignores them." if not config.needs_wavelengths
           else " It needs each scene's band centres (`--wavelengths`) and refuses spectra without them."),
        "",
        "## Training data",
        "",
        f"{len(train['data']['scenes'].split(','))} scenes, mixed `{train['data']['mixing']}`; "
        f"{train['data']['held_out_pixels']} pixels of each held out of training and scored at the last evaluation "
        f"(step {final_eval.get('step', '—')}). Each scene is min–max normalised with its own range.",
        "",
        *scene_rows(train, final_eval),
        "",
        "## Training",
        "",
        f"{steps['steps']} steps of {steps['batch_size']} pixels, seed {train['seed']}; Adam, learning rate "
        f"{optim['learning_rate']} with cosine decay to {optim['final_learning_rate_fraction']} of it, weight "
        f"decay {optim['weight_decay']} in the loss. Median throughput "
        f"{sorted(rates)[len(rates) // 2] if rates else 0:,.0f} pixels/s.",
        "",
        "## Classification",
        "",
        *classification_section(reports),
        "## Known limits",
        "",
        "- Pretrained on the sensors above only; how it transfers to another sensor is measured for the same "
        "configuration in docs/study/README.md (scenes left out of pretraining), not for these weights.",
        "- A spectrum is encoded alone: spatial context comes only from `classify --methods spatial_pretrained`. "
        "Scenes must be normalised like the training scenes (each by its own min–max); `hsijax encode` and "
        "`reconstruct` do this.",
        "- More than the largest bucket's bands is refused; bands are not resampled to wavelengths.",
        *(["- The poster's (faithful) decoder sees only its code, repeated: it reconstructs long spectra "
           "coarsely (see the held-out MPSNR above). It transfers to unseen sensors better than the conditioned "
           "decoder, which reconstructs seen sensors far better (docs/study/README.md): for reconstruction "
           "of a sensor listed above, pretrain with `--config.model.decoder=conditioned`."]
          if getattr(config, "decoder", None) == "faithful" else []),
        "",
    ])


def read_reports(folders: list[Path]) -> list[dict]:
    return [json.loads((Path(folder) / "metrics.json").read_text()) for folder in folders]
