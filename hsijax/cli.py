"""The `hsijax` command: each subcommand parses its flags and calls the library or an experiment.

User errors (`HsijaxError`, and argparse's errors in flags) print one line on stderr and exit with
status 2, without a traceback. Nothing is computed here: what a command does lives in the module it
calls (the ``run_*`` functions below only turn flags into arguments and results into lines).
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

from hsijax.errors import HsijaxError


class Parser(argparse.ArgumentParser):
    """argparse, but a flag error is one line (no usage block), like every other hsijax error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


CHECKPOINT_HELP = ("a pretraining workdir, one checkpoint step (local or a URI: gs://BUCKET/RUN), or a shipped "
                   "model: 'pretrained' (the linear network on the wavelength grid) or 'poster' (the poster's CNN)")


def fraction(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def methods(text: str) -> tuple[str, ...]:
    from hsijax.evaluate.classification import METHODS

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


def add_demo(subparsers) -> None:
    from hsijax.data.loading import positive_int
    from hsijax.experiments.demo import DemoSettings

    defaults = DemoSettings()
    demo = subparsers.add_parser(
        "demo", help="the shipped weights on Indian Pines (embedded): encode, reconstruct, classify; then a "
                "short pretraining of both decoders"
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
    from hsijax.experiments.demo import DemoSettings, format_report, run_demo

    settings = DemoSettings(workdir=args.workdir, steps=args.steps, batch_size=args.batch_size,
                            code_width=args.code_width, seed=args.seed, scenes=tuple(args.scene),
                            data_dir=args.data_dir, seeds=args.seeds, classify_steps=args.classify_steps)
    report = run_demo(settings)
    return format_report(report) + f"\nwrote {settings.workdir / 'report.md'}"


def add_import(subparsers) -> None:
    from hsijax.data.loading import add_file_options
    from hsijax.data.storage import DEFAULT_DATA_DIR

    command = subparsers.add_parser(
        "import", help="build a dataset from any scene file (.mat, ENVI .hdr, TIFF, .npy)"
    )
    command.add_argument("file", type=Path, help="the cube: .mat (v5 or v7.3), .hdr, .tif, .npy")
    command.add_argument("--name", required=True, help="dataset name: lowercase, digits, _")
    add_file_options(command)
    command.add_argument("--sensor", default="unknown")
    command.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    command.add_argument("--rebuild", action="store_true",
                         help="import again over a dataset of that name (one imported with other options or "
                              "from files that changed since is otherwise refused; the same one is kept)")
    command.set_defaults(run=run_import_command)


def run_import_command(args) -> str:
    from hsijax.data.loading import ImportOptions, import_scene, summary

    directory = import_scene(ImportOptions.from_args(args), args.name, args.data_dir, rebuild=args.rebuild)
    return f"{summary(directory)}\n{directory}"


def add_prepare(subparsers) -> None:
    from hsijax.data.catalog import SCENES
    from hsijax.data.storage import DEFAULT_DATA_DIR

    command = subparsers.add_parser(
        "prepare", help="build one of the catalogued scenes (download, or files in --manual-dir)"
    )
    command.add_argument("scene", choices=sorted(SCENES), metavar="SCENE",
                         help=f"one of: {', '.join(sorted(SCENES))}")
    command.add_argument("--manual-dir", type=Path, help="folder holding the scene's published files")
    command.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    command.add_argument("--rebuild", action="store_true",
                         help="build it again over a prepared one (a prepared scene is otherwise kept)")
    command.set_defaults(run=run_prepare_command)


def run_prepare_command(args) -> str:
    from hsijax.data.builders import prepare_scene
    from hsijax.data.loading import summary

    directory = prepare_scene(args.scene, args.data_dir, args.manual_dir, rebuild=args.rebuild)
    return f"{summary(directory)}\n{directory}"


def add_scene_input(command, many: bool = False) -> None:
    """--dataset NAME, or a FILE with the import options: how the evaluation commands take a scene
    (``many``: FILEs or folders of them)."""
    from hsijax.data.loading import add_file_options
    from hsijax.data.storage import DEFAULT_DATA_DIR

    command.add_argument("file", type=Path, nargs="*" if many else "?",
                         help="scene files or folders of them" if many else "a scene file (as for hsijax import)")
    command.add_argument("--dataset", help="a prepared (or catalogued) dataset name")
    command.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    add_file_options(command)


def scene_of(args):
    """The scene of --dataset NAME or of a FILE (`hsijax.data.loading.scene_input`)."""
    from hsijax.data.loading import ImportOptions, scene_input

    if (args.dataset is None) == (args.file is None):
        raise HsijaxError("give either --dataset NAME or a scene FILE")
    return scene_input(args.dataset, ImportOptions.from_args(args) if args.file else None, args.data_dir,
                       wavelengths=args.wavelengths if args.dataset else None)


def add_classify(subparsers) -> None:
    from hsijax.data.loading import positive_int
    from hsijax.evaluate.classification import METHODS, ClassifySettings

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
                              "hsijax.evaluate.spatial)")
    command.add_argument("--windows", type=odd_windows, default=defaults.windows,
                         help="spatial_* only: the neighbourhood sizes that cross-validation on the training "
                              f"pixels chooses from (default: {','.join(map(str, defaults.windows))}; 1: one pixel)")
    command.add_argument("--validation-fraction", type=fraction, default=defaults.validation_fraction,
                         help="share of each class's training pixels that choose the step (never test pixels)")
    command.add_argument("--out", type=Path, required=True)
    command.set_defaults(run=run_classify_command)


def run_classify_command(args) -> str:
    from hsijax.evaluate.classification import ClassifySettings, classify_file, format_classification

    settings = ClassifySettings(args.fraction, args.seeds, args.steps, validation_fraction=args.validation_fraction,
                                windows=args.windows)
    report = classify_file(lambda: scene_of(args), settings, args.out, args.checkpoint, methods=args.methods)
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
    from hsijax.evaluate.reconstruction import reconstruct_to

    metrics = reconstruct_to(args.checkpoint, lambda: scene_of(args), args.out)
    return (f"{metrics['dataset']}: {metrics['bands']} bands, code width {metrics['code_width']}: "
            f"MPSNR {metrics['mpsnr_db']:.2f} dB, MSSIM {metrics['mssim']:.4f}\n"
            f"wrote {args.out / 'metrics.json'} and 3 figures")


def add_map(subparsers) -> None:
    from hsijax.data.loading import add_file_options

    command = subparsers.add_parser(
        "map", help="a land-cover map of a scene from a few labels: map.tif (GeoTIFF), map.png, classifier/, report",
        description="Train a classifier on the shared codes of the labelled pixels (chosen by cross-validation on "
                    "them alone) and map every pixel; or apply a saved one to another scene (--classifier).")
    command.add_argument("file", type=Path, help="the scene: any file hsijax import reads, with its options")
    command.add_argument("--labels", type=Path, help="training labels: an image of the scene's size (.npy, .mat, "
                         "TIFF/GeoTIFF; 0 = unlabelled, classes 1..255), or polygons in the scene's CRS (.gpkg, .shp, "
                         ".geojson) with a class number attribute")
    command.add_argument("--labels-key", help="variable holding the labels in a .mat file")
    command.add_argument("--labels-attribute", default="class", help="the polygons' class attribute (default: class)")
    command.add_argument("--class-names", help="comma-separated names of classes 1, 2, 3, ... (for the legend)")
    command.add_argument("--checkpoint", default="pretrained", help=CHECKPOINT_HELP + " (default: pretrained)")
    command.add_argument("--classifier", type=Path, help="a saved classifier (DIR/classifier of an earlier hsijax map) "
                         "to apply instead of training one")
    command.add_argument("--normalization", choices=("saved", "scene"), default="saved",
                         help="with --classifier: the training scene's normalisation (saved, for its sensor) or "
                              "this scene's own min-max (another sensor)")
    command.add_argument("--out", type=Path, required=True, help="a new folder for the map and its report")
    add_file_options(command)
    command.add_argument("--sensor", default="unknown")
    command.set_defaults(run=run_map_command)


def run_map_command(args) -> str:
    from hsijax.data.loading import ImportOptions
    from hsijax.evaluate.mapping import make_map

    result = make_map(ImportOptions.from_args(args), args.out, args.labels, args.labels_key, args.checkpoint,
                      args.classifier, args.class_names, args.normalization, labels_attribute=args.labels_attribute)
    scored = "" if result.cross_validated_oa != result.cross_validated_oa else (
        f", cross-validated OA {100 * result.cross_validated_oa:.2f} % on the training pixels")
    return (f"wrote {result.out}/map.tif, map.png, report.md ({result.chosen}{scored}; {len(result.classes)} classes, "
            f"{result.seconds:.1f} s)")


def add_encode(subparsers) -> None:
    from hsijax.data.loading import positive_int
    from hsijax.evaluate.encode_scene import NORMALIZATIONS

    command = subparsers.add_parser(
        "encode", help="encode a whole scene, or an archive of scene files, to (H, W, c) shared codes")
    command.add_argument("--checkpoint", required=True, help=CHECKPOINT_HELP)
    add_scene_input(command, many=True)
    command.add_argument("--output", type=Path, required=True,
                         help="the .npy or .tif (GeoTIFF) to write; a folder for several files or a folder of them")
    command.add_argument("--normalization", metavar="|".join(NORMALIZATIONS),
                         help="how raw values are scaled, recorded with the output: scene (fitted on each scene; the "
                              "default for one scene), archive (one fit over every file: tiles of one scene), "
                              "dataset:NAME (a prepared dataset's; the default for --dataset), or a saved FILE.json; "
                              "an archive of several files must choose")
    command.add_argument("--format", choices=("npy", "tif"), default="npy",
                         help="an archive's outputs: OUT/STEM.npy (default) or GeoTIFFs OUT/STEM.tif")
    command.add_argument("--no-progress", action="store_true")
    archive = command.add_argument_group("an archive across processes (rerun the same command to resume)")
    archive.add_argument("--num-processes", type=positive_int, default=1)
    archive.add_argument("--process-id", type=int, default=0, help="this process's share: files i with i %% N == ID")
    archive.add_argument("--distributed", action="store_true",
                         help="jax.distributed.initialize() from the environment gives N and ID (a TPU pod)")
    command.set_defaults(run=run_encode_command)


def run_encode_command(args) -> str:
    from hsijax.data.loading import ImportOptions
    from hsijax.evaluate.encode_scene import check_normalization_spec, encode_archive, encode_to

    check_normalization_spec(args.normalization)
    files = args.file
    if args.dataset or (len(files) == 1 and not files[0].is_dir() and args.num_processes == 1 and not args.distributed):
        args.file = files[0] if files else None
        normalization = args.normalization or (f"dataset:{args.dataset}" if args.dataset else None)
        path, shape = encode_to(args.checkpoint, lambda: scene_of(args), args.output, normalization,
                                args.data_dir, progress=not args.no_progress)
        return f"wrote {path}: codes {shape}"
    if not files:
        raise HsijaxError("give scene FILEs or folders to encode")
    process_id, processes = args.process_id, args.num_processes
    if args.distributed:
        import jax

        jax.distributed.initialize()
        process_id, processes = jax.process_index(), jax.process_count()
    options = ImportOptions.from_args(argparse.Namespace(**{**vars(args), "file": files[0]}))
    done = encode_archive(args.checkpoint, files, options, args.output, args.normalization, process_id, processes,
                          args.format, args.data_dir, progress=not args.no_progress)
    return (f"process {process_id} of {processes}: encoded {len(done['encoded'])}, skipped {len(done['skipped'])} "
            f"already done, into {args.output}")


def add_pretrain(subparsers) -> None:
    from hsijax.configs import PRETRAINING

    command = subparsers.add_parser(
        "pretrain", help="pretrain the shared autoencoder on several scenes (resumes in --workdir)",
        description="Flags after the known ones are ml_collections overrides: --config.train.steps=100",
    )
    command.add_argument("--config", required=True,
                         help=f"a config file (hsijax/configs/NAME.py) or a built-in name: {PRETRAINING}")
    command.add_argument("--workdir", required=True,
                         help="checkpoints, metrics, TensorBoard: a local folder or a URI (gs://BUCKET/RUN)")
    command.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_rebuild(command)
    add_distributed(command)
    command.set_defaults(run=run_pretrain_command, overrides=True)


REBUILD_HELP = ("build every dataset the config names again, from its files or the catalogue, even when one of "
                "that name exists (one built with other options or from files that changed is otherwise refused)")


def add_rebuild(command) -> None:
    command.add_argument("--rebuild", action="store_true", help=REBUILD_HELP)


def with_rebuild(config, args):
    """The config with ``data.rebuild`` set by --rebuild (a leave-out config's data is ``pretrain.data``)."""
    if getattr(args, "rebuild", False):
        data = config.pretrain.data if "pretrain" in config else config.data
        with data.unlocked():
            data.rebuild = True
    return config


def add_distributed(command) -> None:
    """The flags of one `jax.distributed` mesh over several processes (`hsijax pretrain`, `grid-pca`)."""
    from hsijax.data.loading import positive_int

    distributed = command.add_argument_group("multi-process (see launch/README.md)")
    distributed.add_argument("--distributed", action="store_true",
                             help="jax.distributed.initialize() from the environment (TPU VM, SLURM)")
    distributed.add_argument("--coordinator", help="host:port of process 0")
    distributed.add_argument("--num-processes", type=positive_int)
    distributed.add_argument("--process-id", type=int)


def initialize_distributed(args) -> None:
    import jax

    if args.coordinator or args.distributed:
        jax.distributed.initialize(args.coordinator, args.num_processes, args.process_id)


def run_pretrain_command(args) -> str | None:
    import jax

    from hsijax.configs import load_config
    from hsijax.train.loop import train

    initialize_distributed(args)
    summary = train(with_rebuild(load_config(args.config, args.overrides), args), args.workdir,
                    progress=not args.no_progress)
    if summary.stopped_at is not None:
        return (f"preemption notice (SIGTERM): stopped at step {summary.stopped_at} of {summary.steps} and saved "
                "its checkpoint; run the same command again to resume") if jax.process_index() == 0 else None
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
    from hsijax.experiments.model_card import export

    model, path, size, card = export(args.checkpoint, args.output, args.card, args.classification)
    lines = [f"wrote {path}: {model.config.description}, code width {model.config.code_width}, {size / 1e6:.2f} MB"]
    return "\n".join(lines + ([f"wrote {card}"] if card else []))


def add_experiment(subparsers, name: str, help: str, config: str, override: str, run) -> None:
    """A resumable experiment that writes a page: `hsijax study`, `hsijax leave-out`."""
    command = subparsers.add_parser(
        name, help=help, description=f"Resumable; flags after the known ones are ml_collections overrides: {override}"
    )
    command.add_argument("--config", default=config, help=f"a config file or the built-in '{config}'")
    command.add_argument("--workdir", type=Path, required=True, help="every pretraining and result")
    command.add_argument("--report", type=Path, help="where the page and its figures go (default WORKDIR/report)")
    command.add_argument("--report-only", action="store_true", help="render the page from what is done, run nothing")
    command.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_rebuild(command)
    command.set_defaults(run=run, overrides=True)


def run_experiment(args, builtins: tuple[str, ...], run, write_report) -> str:
    """Load the config, check both output folders, run what is not done yet, render the page."""
    from hsijax.configs import load_config
    from hsijax.files import check_output

    config = with_rebuild(load_config(args.config, args.overrides, builtins=builtins), args)
    workdir = check_output(args.workdir, "directory")
    report = check_output(args.report or args.workdir / "report", "directory")
    if not args.report_only:
        run(config, workdir, progress=not args.no_progress)
    return f"wrote {write_report(config, workdir, report)}"


def add_study(subparsers) -> None:
    add_experiment(subparsers, "study", "the decoder study: decoders x code widths on unseen scenes, leave-scene-out",
                   "study", "--config.classify.seeds=3", run_study_command)


def run_study_command(args) -> str:
    from hsijax.configs import STUDY
    from hsijax.experiments.study import run_study
    from hsijax.experiments.study_report import write_report

    return run_experiment(args, STUDY, run_study, write_report)


def add_leave_out(subparsers) -> None:
    add_experiment(subparsers, "leave-out",
                   "leave-sensor-out evaluation against the shared wavelength-grid PCA and the raw spectra",
                   "leave_out", "--config.pretrain.train.steps=3000", run_leave_out_command)


def add_grid_pca(subparsers) -> None:
    from hsijax.data.loading import positive_int

    command = subparsers.add_parser(
        "grid-pca", help="fit the shared wavelength-grid PCA on the real scenes (and spectral library) and save it",
        description="Flags after the known ones are ml_collections overrides of the leave-out config. The fit sums "
                    "over a jax.distributed mesh: run one process per host with --coordinator (as hsijax pretrain)",
    )
    command.add_argument("--config", default="leave_out", help="a leave-out config file or the built-in 'leave_out'")
    command.add_argument("--output", required=True,
                         help="a new folder, local or a URI (SharedGridPCA.load reads it)")
    command.add_argument("--code-width", type=positive_int, default=32, help="components kept (default 32)")
    command.add_argument("--network", type=Path, help="also save the linear network on the wavelength grid "
                         "(its first --network-width components) to this new folder: a --checkpoint")
    command.add_argument("--network-width", type=positive_int, default=16, help="the network's code width (default 16)")
    command.add_argument("--card", type=Path, help="also write the network's model card (Markdown)")
    command.add_argument("--leave-out", type=Path, metavar="WORKDIR",
                         help="an `hsijax leave-out` workdir of the linear network, whose unseen-scene scores go on the card")
    command.add_argument("--classification", type=Path, nargs="*", default=[], metavar="DIR",
                         help="`hsijax classify --out` folders whose scores go on the card")
    add_distributed(command)
    add_rebuild(command)
    command.set_defaults(run=run_grid_pca_command, overrides=True)


def run_grid_pca_command(args) -> str | None:
    import jax

    from hsijax.configs import LEAVE_OUT, load_config
    from hsijax.experiments.grid_pca import fit_grid_pca

    config = with_rebuild(load_config(args.config, args.overrides, builtins=LEAVE_OUT), args)
    initialize_distributed(args)
    pca, _ = fit_grid_pca(config, args.output, args.code_width, args.network, args.network_width, args.card,
                          args.classification, args.leave_out)
    if jax.process_index() != 0:
        return None
    lines = [f"wrote {args.output}: {pca.code_width} components on the {pca.mean.size}-point shared grid"]
    if args.network:
        lines.append(f"wrote {args.network}: the linear network, code width {args.network_width}")
    return "\n".join(lines + ([f"wrote {args.card}"] if args.card else []))


def add_few_label(subparsers) -> None:
    add_experiment(subparsers, "few-label",
                   "few-label classification: every classifier on every labelled scene, per pixel and spatial, "
                   "paired against the SVM on spectra", "few_label", "--config.seeds=3", run_few_label_command)


def run_few_label_command(args) -> str:
    from hsijax.configs import FEW_LABEL
    from hsijax.experiments.few_label import run_few_label
    from hsijax.experiments.few_label_report import write_report

    return run_experiment(args, FEW_LABEL, run_few_label, write_report)


def run_leave_out_command(args) -> str:
    from hsijax.configs import LEAVE_OUT
    from hsijax.experiments.leave_out import run_leave_out, write_report

    return run_experiment(args, LEAVE_OUT, run_leave_out, write_report)


def quiet_libraries() -> None:
    """TFDS logs every step at INFO; keep warnings, and its progress bars only on a terminal."""
    import absl.logging
    import tensorflow_datasets as tfds

    absl.logging.set_verbosity(absl.logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # one line per retry otherwise
    # Orbax's reads of a damaged checkpoint fail in asyncio tasks whose exceptions asyncio logs again,
    # at length, when they are collected; hsijax reports the damage itself in one line.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    # The reads still in flight when one failed finish later, on TensorStore's threads, and call back
    # into an event loop Orbax has closed, or are collected unfinished: Python reports each as an
    # "unraisable" error, a traceback on stderr beside the command's one line. Those, and only
    # those, are dropped.
    sys.unraisablehook = without_orbax_leftovers(sys.unraisablehook)
    # The same leftovers, once more: their coroutines, never started, are collected with a warning.
    # (hsijax itself has no coroutines, so none of its own can be hidden.)
    warnings.filterwarnings("ignore", message=r"coroutine '.*' was never awaited", category=RuntimeWarning)
    if not sys.stderr.isatty():
        tfds.disable_progress_bar()


def without_orbax_leftovers(hook):
    """``sys.unraisablehook`` that drops what Orbax's reads leave behind a failed restore (see
    `quiet_libraries`): "Event loop is closed" from their callbacks, and the errors of its
    coroutines collected unfinished. Everything else goes to ``hook``."""

    def unraisablehook(unraisable):
        closed_loop = unraisable.exc_type is RuntimeError and str(unraisable.exc_value) == "Event loop is closed"
        code = getattr(unraisable.object, "cr_code", None)
        if not (closed_loop or code is not None and "orbax" in code.co_filename):
            hook(unraisable)

    return unraisablehook


COMMANDS = {"demo": add_demo, "import": add_import, "prepare": add_prepare, "pretrain": add_pretrain, "map": add_map,
            "classify": add_classify, "reconstruct": add_reconstruct, "encode": add_encode, "export": add_export,
            "study": add_study, "leave-out": add_leave_out, "few-label": add_few_label, "grid-pca": add_grid_pca}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or, with ``only``, that command's in full and the others as bare names: each
    command's flags import the module whose defaults they show, and a command should not wait for
    the imports of the other ten (1.5 s of `hsijax encode`'s start here)."""
    parser = Parser(
        prog="hsijax", description="A shared encoder for hyperspectral images from any sensor."
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, add in COMMANDS.items():
        if only is None or name == only:
            add(subparsers)
        else:
            subparsers.add_parser(name)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    only = argv[0] if argv and argv[0] in COMMANDS else None
    args, unknown = build_parser(only).parse_known_args(argv)
    if getattr(args, "overrides", None):
        args.overrides = unknown  # ml_collections --config.FIELD=VALUE flags
    elif unknown:
        build_parser(only).parse_args(argv)  # let argparse report the unknown flags
    if args.command != "demo":
        quiet_libraries()
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
