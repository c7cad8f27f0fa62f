"""The `hsijax` command. Each subcommand parses its flags and calls one library function.

User errors (`HsijaxError`, and argparse's errors in flags) print one line on stderr and exit with
status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from hsijax.errors import HsijaxError


class Parser(argparse.ArgumentParser):
    """argparse, but a flag error is one line (no usage block), like every other hsijax error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


CHECKPOINT_HELP = "a pretraining workdir, one checkpoint step, or 'pretrained' (the weights shipped with hsijax)"


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def add_demo(subparsers) -> None:
    from hsijax.demo import DemoSettings

    defaults = DemoSettings()
    demo = subparsers.add_parser(
        "demo", help="pretrain briefly on Indian Pines (embedded) and compare both decoders"
    )
    demo.add_argument("--workdir", type=Path, default=defaults.workdir, help="where demo.json goes")
    demo.add_argument("--steps", type=positive_int, default=defaults.steps)
    demo.add_argument("--batch-size", type=positive_int, default=defaults.batch_size)
    demo.add_argument("--code-width", type=positive_int, default=defaults.code_width)
    demo.add_argument("--seed", type=int, default=defaults.seed)
    demo.add_argument("--scene", action="append", default=[], metavar="NAME",
                      help="also pretrain on this prepared or catalogued scene (repeatable)")
    demo.add_argument("--data-dir", type=Path, default=defaults.data_dir)
    demo.add_argument("--seeds", type=positive_int, default=defaults.seeds, help="classification seeds")
    demo.add_argument("--classify-steps", type=positive_int, default=defaults.classify_steps)
    demo.set_defaults(run=run_demo_command)


def run_demo_command(args) -> str:
    from hsijax.demo import DemoSettings, format_report, run_demo

    settings = DemoSettings(
        workdir=args.workdir,
        steps=args.steps,
        batch_size=args.batch_size,
        code_width=args.code_width,
        seed=args.seed,
        scenes=tuple(args.scene),
        data_dir=args.data_dir,
        seeds=args.seeds,
        classify_steps=args.classify_steps,
    )
    report = run_demo(settings)
    return format_report(report) + f"\nwrote {settings.workdir / 'report.md'}"


def add_import(subparsers) -> None:
    from hsijax.datasets import DEFAULT_DATA_DIR
    from hsijax.readers import LAYOUTS

    command = subparsers.add_parser(
        "import", help="build a dataset from any scene file (.mat, ENVI .hdr, TIFF, .npy)"
    )
    command.add_argument("file", type=Path, help="the cube: .mat (v5 or v7.3), .hdr, .tif, .npy")
    command.add_argument("--name", required=True, help="dataset name: lowercase, digits, _")
    command.add_argument("--gt", type=Path, help="ground-truth label map (0 = unlabelled)")
    command.add_argument("--key", help="variable holding the cube in a .mat file")
    command.add_argument("--gt-key", help="variable holding the labels in a .mat file")
    command.add_argument("--wavelengths", type=Path, help="band centres in nm (text, .npy, .mat, or an ENVI .hdr)")
    command.add_argument("--shape", type=positive_int, nargs=2, metavar=("H", "W"),
                         help="image size, for a bands x pixels matrix (column-major)")
    command.add_argument("--layout", choices=LAYOUTS, default="auto",
                         help="axis order of a 3-D cube; auto: band-first when the first axis is smallest")
    command.add_argument("--sensor", default="unknown")
    command.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    command.set_defaults(run=run_import_command)


def import_from_options(options: str, name: str, data_dir) -> Path:
    """Import a scene from an `hsijax import` option string (as configs give them)."""
    import shlex

    args = build_parser().parse_args(["import", *shlex.split(options), "--name", name, "--data-dir", str(data_dir)])
    return run_import_command(args)


def run_import_command(args) -> Path:
    from hsijax.datasets import build_dataset

    scene = scene_from_file(args, args.name, args.sensor)
    return build_dataset(scene, args.data_dir, source=str(args.file))


def scene_from_file(args, name: str, sensor: str = "unknown"):
    """A Scene from FILE and the import options (--gt, --key, --gt-key, --wavelengths, --shape, --layout)."""
    from hsijax.readers import read_cube, read_labels, read_wavelengths
    from hsijax.scenes import Scene

    cube, wavelengths = read_cube(args.file, args.key, tuple(args.shape) if args.shape else None, args.layout)
    if args.wavelengths is not None:
        wavelengths = read_wavelengths(args.wavelengths)
        if len(wavelengths) != cube.shape[-1]:
            raise HsijaxError(f"{args.wavelengths}: {len(wavelengths)} wavelengths for {cube.shape[-1]} "
                              f"bands of {args.file}")
    labels = read_labels(args.gt, args.gt_key) if args.gt is not None else None
    if labels is not None and labels.shape != cube.shape[:2]:
        raise HsijaxError(
            f"{args.gt}: ground truth shape {labels.shape} differs from the image's {cube.shape[:2]}"
        )
    return Scene(name, sensor, cube, labels, wavelengths)


def add_prepare(subparsers) -> None:
    from hsijax.catalog import SCENES
    from hsijax.datasets import DEFAULT_DATA_DIR

    command = subparsers.add_parser(
        "prepare", help="build one of the catalogued scenes (download, or files in --manual-dir)"
    )
    command.add_argument("scene", choices=sorted(SCENES), metavar="SCENE",
                         help=f"one of: {', '.join(sorted(SCENES))}")
    command.add_argument("--manual-dir", type=Path, help="folder holding the scene's published files")
    command.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    command.set_defaults(run=run_prepare_command)


def run_prepare_command(args) -> Path:
    from hsijax.published import prepare_scene

    return prepare_scene(args.scene, args.data_dir, args.manual_dir)


def add_scene_input(command) -> None:
    """--dataset NAME, or a FILE with the import options: how the evaluation commands take a scene."""
    from hsijax.datasets import DEFAULT_DATA_DIR
    from hsijax.readers import LAYOUTS

    command.add_argument("file", type=Path, nargs="?", help="a scene file (as for hsijax import)")
    command.add_argument("--dataset", help="a prepared (or catalogued) dataset name")
    command.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    command.add_argument("--gt", type=Path)
    command.add_argument("--key")
    command.add_argument("--gt-key")
    command.add_argument("--wavelengths", type=Path)
    command.add_argument("--shape", type=positive_int, nargs=2, metavar=("H", "W"))
    command.add_argument("--layout", choices=LAYOUTS, default="auto")


def scene_from_args(args):
    """The Scene named by --dataset (prepared first if catalogued and missing) or read from FILE."""
    if (args.dataset is None) == (args.file is None):
        raise HsijaxError("give either --dataset NAME or a scene FILE")
    if args.dataset:
        from hsijax.datasets import load_dataset, read_scene
        from hsijax.trainer import ensure_scene

        return read_scene(load_dataset(ensure_scene(args.dataset, args.data_dir, {})))
    from hsijax.datasets import check_scene_content

    scene = scene_from_file(args, args.file.stem.lower())
    check_scene_content(scene, str(args.file))  # NaN, overflow: named by the file, before any work
    return scene


def scene_source(args) -> str:
    return f"dataset {args.dataset}" if args.dataset else str(args.file)


def check_bands(scene, model, source: str) -> None:
    """Refuse a scene with more bands than the model's largest bucket, naming it."""
    from hsijax.spectral import bucket_for

    try:
        bucket_for(scene.cube.shape[-1], model.config.buckets)
    except HsijaxError as error:
        raise HsijaxError(f"{source}: {error}") from None


def fraction(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def methods(text: str) -> tuple[str, ...]:
    from hsijax.classify import METHODS

    chosen = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in chosen if name not in METHODS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose from {','.join(METHODS)}, got {text!r}")
    return chosen


def odd_windows(text: str) -> tuple[int, ...]:
    """``--windows 3,5,7``: odd neighbourhood sizes, 1 for a single pixel."""
    try:
        windows = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        windows = ()
    if not windows or any(window < 1 or window % 2 == 0 for window in windows):
        raise argparse.ArgumentTypeError(f"expected odd positive sizes such as 3,5,7, got {text!r}")
    return windows


def add_classify(subparsers) -> None:
    from hsijax.classify import METHODS, ClassifySettings

    defaults = ClassifySettings()
    command = subparsers.add_parser(
        "classify", help="few-label classification: pretrained encoder vs scratch vs SVM (and spatial variants), "
                         "over seeds"
    )
    add_scene_input(command)
    command.add_argument("--fraction", type=fraction, default=defaults.fraction,
                         help="per class max(1, floor(F * n)) training pixels")
    command.add_argument("--seeds", type=positive_int, default=defaults.seeds)
    command.add_argument("--checkpoint", help=CHECKPOINT_HELP + " (omit: scratch and svm only)")
    command.add_argument("--steps", type=positive_int, default=defaults.steps,
                         help="most fine-tuning steps; the step kept is chosen on validation pixels")
    command.add_argument("--methods", type=methods, default=None,
                         help=f"comma-separated subset of {','.join(METHODS)} (default: {','.join(defaults.methods)}; "
                              "spatial_*: a pixel's neighbourhood of codes or spectra, SVM-classified, see "
                              "hsijax.spatial)")
    command.add_argument("--windows", type=odd_windows, default=defaults.windows,
                         help="spatial_* only: the neighbourhood sizes that cross-validation on the training "
                              f"pixels chooses from (default: {','.join(map(str, defaults.windows))}; 1: one pixel)")
    command.add_argument("--validation-fraction", type=fraction, default=defaults.validation_fraction,
                         help="share of each class's training pixels that choose the step (never test pixels)")
    command.add_argument("--out", type=Path, required=True)
    command.set_defaults(run=run_classify_command)


def run_classify_command(args) -> str:
    from hsijax.classify import (NEEDS_CHECKPOINT, ClassifySettings, classify_scene, format_classification,
                                 print_progress)
    from hsijax.files import check_output
    from hsijax.splits import training_counts

    check_output(args.out)
    needing = [name for name in args.methods or () if name in NEEDS_CHECKPOINT]
    if needing and not args.checkpoint:
        raise HsijaxError(f"--methods {','.join(needing)} needs --checkpoint")
    scene = scene_from_args(args)
    where = args.dataset or args.gt or args.file
    if scene.labels is None or not (scene.labels > 0).any():
        raise HsijaxError(f"{where}: no labelled pixels to classify")
    classes = np.unique(scene.labels[scene.labels > 0])
    if len(classes) < 2:
        raise HsijaxError(f"{where}: only class {classes[0]} is labelled; classification needs at least 2 classes")
    try:
        training_counts(scene.labels, args.fraction)  # every class must keep a pixel for testing
    except HsijaxError as error:
        raise HsijaxError(f"{where}: {error}") from None
    settings = ClassifySettings(args.fraction, args.seeds, args.steps, checkpoint=args.checkpoint,
                                validation_fraction=args.validation_fraction,
                                methods=args.methods or ClassifySettings.methods, windows=args.windows)
    report = classify_scene(scene, settings, args.out, progress=print_progress)
    return format_classification(report) + f"\nwrote {args.out / 'metrics.json'}"


def add_reconstruct(subparsers) -> None:
    command = subparsers.add_parser(
        "reconstruct", help="reconstruct a whole scene with a pretrained model: MPSNR, MSSIM, figures"
    )
    command.add_argument("--checkpoint", required=True, help=CHECKPOINT_HELP)
    add_scene_input(command)
    command.add_argument("--out", type=Path, required=True)
    command.set_defaults(run=run_reconstruct_command)


def run_reconstruct_command(args) -> str:
    from hsijax.checkpoint import load_model
    from hsijax.figures import reconstruction_figures
    from hsijax.files import check_output, write_json_atomic
    from hsijax.reconstruction import evaluate_reconstruction

    check_output(args.out)
    model = load_model(args.checkpoint)
    scene = scene_from_args(args)
    check_bands(scene, model, scene_source(args))
    metrics, original, recon = evaluate_reconstruction(model, scene)
    reconstruction_figures(original, recon, np.asarray(metrics["per_band_psnr_db"]), scene.wavelengths_nm,
                           scene.name, args.out)
    write_json_atomic(args.out / "metrics.json", metrics)
    return (f"{scene.name}: {metrics['bands']} bands, code width {metrics['code_width']}: "
            f"MPSNR {metrics['mpsnr_db']:.2f} dB, MSSIM {metrics['mssim']:.4f}\n"
            f"wrote {args.out / 'metrics.json'} and 3 figures")


def add_encode(subparsers) -> None:
    command = subparsers.add_parser("encode", help="encode a whole scene to its (H, W, c) shared codes")
    command.add_argument("--checkpoint", required=True, help=CHECKPOINT_HELP)
    add_scene_input(command)
    command.add_argument("--output", type=Path, required=True, help="the .npy file to write")
    command.add_argument("--no-progress", action="store_true")
    command.set_defaults(run=run_encode_command)


def run_encode_command(args) -> str:
    from hsijax.checkpoint import load_model
    from hsijax.encoding import encode_scene
    from hsijax.files import check_output

    check_output(args.output, "file")
    model = load_model(args.checkpoint)
    scene = scene_from_args(args)
    check_bands(scene, model, scene_source(args))
    path = encode_scene(model, scene, args.output, progress=not args.no_progress)
    return f"wrote {path}: codes {scene.cube.shape[:2] + (model.config.code_width,)}"


BUILTIN_CONFIGS = ("tiny", "local", "unseen", "poster", "shipped")


def add_pretrain(subparsers) -> None:
    command = subparsers.add_parser(
        "pretrain", help="pretrain the shared autoencoder on several scenes (resumes in --workdir)",
        description="Flags after the known ones are ml_collections overrides: --config.train.steps=100",
    )
    command.add_argument("--config", required=True,
                         help=f"a config file (hsijax/configs/NAME.py) or a built-in name: {BUILTIN_CONFIGS}")
    command.add_argument("--workdir", type=Path, required=True, help="checkpoints, metrics, TensorBoard")
    command.add_argument("--no-progress", action="store_true", help="no progress bar")
    distributed = command.add_argument_group("multi-process (see launch/README.md)")
    distributed.add_argument("--distributed", action="store_true",
                             help="jax.distributed.initialize() from the environment (TPU VM, SLURM)")
    distributed.add_argument("--coordinator", help="host:port of process 0")
    distributed.add_argument("--num-processes", type=positive_int)
    distributed.add_argument("--process-id", type=int)
    command.set_defaults(run=run_pretrain_command, overrides=True)


def load_config(path_or_name: str, overrides: list[str], builtins: tuple[str, ...] = BUILTIN_CONFIGS):
    """The ml_collections config, with ``--config.FIELD=VALUE`` overrides applied (types checked)."""
    from absl import flags
    from ml_collections import config_flags

    path = Path(path_or_name)
    if path_or_name in builtins:
        path = Path(__file__).parent / "configs" / f"{path_or_name}.py"
    if not path.is_file():
        raise HsijaxError(f"{path}: no such config file (or built-in name {builtins})")
    flag_values = flags.FlagValues()
    argv = ["hsijax", f"--config={path}", *overrides]
    # sys_argv: ml_collections otherwise looks for the overrides in sys.argv, not in `overrides`
    config_flags.DEFINE_config_file("config", str(path), flag_values=flag_values, lock_config=True,
                                    sys_argv=argv)
    try:
        flag_values(argv)
        return flag_values.config
    except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as error:
        while error.args and isinstance(error.args[0], KeyError):  # an unknown field, maybe wrapped
            error = error.args[0]
        if isinstance(error, KeyError):  # its text is a repr, with a "Did you mean" on a second line
            text = "; ".join(line.strip() for line in str(error.args[0]).splitlines() if line.strip())
            raise HsijaxError(f"{path}: unknown config field {text}") from None
        raise HsijaxError(f"{path}: {' '.join(str(error).split())}") from None


def run_pretrain_command(args) -> str:
    import jax

    from hsijax.trainer import train

    if args.coordinator or args.distributed:
        jax.distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    config = load_config(args.config, args.overrides)
    summary = train(config, args.workdir, progress=not args.no_progress)
    lines = [f"steps {summary.resumed_from} -> {summary.steps} in {summary.seconds:.1f} s, "
             f"{summary.pixels_per_second:,.0f} pixels/s on {jax.device_count()} device(s)"]
    lines += [f"{name}: {value:.2f}" for name, value in sorted(summary.final_eval.items())]
    return "\n".join(lines) if jax.process_index() == 0 else None


def add_export(subparsers) -> None:
    command = subparsers.add_parser(
        "export", help="save a checkpoint's model alone (parameters, config, checksums; no optimiser state)"
    )
    command.add_argument("--checkpoint", required=True, help=CHECKPOINT_HELP)
    command.add_argument("--output", type=Path, required=True, help="a new folder; --checkpoint reads it back")
    command.add_argument("--card", type=Path, help="also write a model card (Markdown) from the run's records")
    command.add_argument("--classification", type=Path, nargs="*", default=[], metavar="DIR",
                         help="`hsijax classify --out` folders whose scores go on the card")
    command.set_defaults(run=run_export_command)


def run_export_command(args) -> str:
    from hsijax.checkpoint import load_model, newest_step_directory, save_model
    from hsijax.files import check_output, write_text_atomic

    check_output(args.output, "directory")
    if args.output.exists():
        raise HsijaxError(f"{args.output}: already exists; export writes a new folder")
    if args.card:
        check_output(args.card, "file")
    for folder in args.classification:
        if not (folder / "metrics.json").is_file():
            raise HsijaxError(f"{folder}: no metrics.json (give the --out folder of hsijax classify)")
    step = newest_step_directory(args.checkpoint)
    if args.card and not (step / "train_config").is_dir():
        raise HsijaxError(f"{step}: no training record for a model card; give the pretraining workdir")
    model = load_model(step)
    path = save_model(model, args.output)
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    lines = [f"wrote {path}: code width {model.config.code_width}, {model.config.decoder} decoder, {size / 1e6:.2f} MB"]
    if args.card:
        import shutil

        from hsijax.model_card import read_reports, render

        try:
            card = render(model, step.parents[1], step, read_reports(args.classification), size, path)
        except BaseException:
            shutil.rmtree(path)  # the model and its card appear together or not at all
            raise
        lines.append(f"wrote {write_text_atomic(args.card, card)}")
    return "\n".join(lines)


def add_study(subparsers) -> None:
    command = subparsers.add_parser(
        "study", help="the decoder study: decoders x code widths on unseen scenes, leave-scene-out",
        description="Resumable; flags after the known ones are ml_collections overrides: "
                    "--config.classify.seeds=3",
    )
    command.add_argument("--config", default="study", help="a study config file or the built-in 'study'")
    command.add_argument("--workdir", type=Path, required=True, help="every pretraining and result")
    command.add_argument("--report", type=Path, help="where the page and its figures go (default WORKDIR/report)")
    command.add_argument("--report-only", action="store_true", help="render the page from what is done, run nothing")
    command.add_argument("--no-progress", action="store_true", help="no progress bars")
    command.set_defaults(run=run_study_command, overrides=True)


def run_study_command(args) -> str:
    from hsijax.files import check_output
    from hsijax.study import run_study
    from hsijax.study_report import write_report

    config = load_config(args.config, args.overrides, builtins=("study",))
    if args.report_only:
        report = check_output(args.report or args.workdir / "report", "directory")
        path = write_report(config, check_output(args.workdir, "directory"), report)
    else:
        path = run_study(config, args.workdir, args.report, progress=not args.no_progress)
    return f"wrote {path}"


def quiet_tfds() -> None:
    """TFDS logs every step at INFO; keep warnings, and its progress bars only on a terminal."""
    import absl.logging
    import tensorflow_datasets as tfds

    absl.logging.set_verbosity(absl.logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # one line per retry otherwise
    # Orbax's reads of a damaged checkpoint fail in asyncio tasks whose exceptions asyncio logs again,
    # at length, when they are collected; hsijax reports the damage itself in one line.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    if not sys.stderr.isatty():
        tfds.disable_progress_bar()


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="hsijax", description="A shared encoder for hyperspectral images from any sensor."
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_demo(subparsers)
    add_import(subparsers)
    add_prepare(subparsers)
    add_pretrain(subparsers)
    add_classify(subparsers)
    add_reconstruct(subparsers)
    add_encode(subparsers)
    add_export(subparsers)
    add_study(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args, unknown = build_parser().parse_known_args(argv)
    if getattr(args, "overrides", None):
        args.overrides = unknown  # ml_collections --config.FIELD=VALUE flags
    elif unknown:
        build_parser().parse_args(argv)  # let argparse report the unknown flags
    if args.command in ("import", "prepare", "pretrain", "classify", "reconstruct", "encode", "export", "study"):
        quiet_tfds()
    try:
        result = args.run(args)
        if result is not None:
            print(result)
    except HsijaxError as error:
        print(f"hsijax {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hsijax {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
