"""The `hsijax` command. Each subcommand parses its flags and calls one library function.

User errors (`HsijaxError`) print one line on stderr and exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from pathlib import Path

from hsijax.errors import HsijaxError


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
    demo.set_defaults(run=run_demo_command)


def run_demo_command(args) -> None:
    from hsijax.demo import DemoSettings, format_table, run_demo

    settings = DemoSettings(
        workdir=args.workdir,
        steps=args.steps,
        batch_size=args.batch_size,
        code_width=args.code_width,
        seed=args.seed,
    )
    report = run_demo(settings)
    print(format_table(report))
    print(f"\nwrote {settings.workdir / 'demo.json'}")


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
    command.add_argument("--wavelengths", type=Path, help="band centres in nm (text, .npy, .mat)")
    command.add_argument("--shape", type=positive_int, nargs=2, metavar=("H", "W"),
                         help="image size, for a bands x pixels matrix (column-major)")
    command.add_argument("--layout", choices=LAYOUTS, default="auto",
                         help="axis order of a 3-D cube; auto: band-first when the first axis is smallest")
    command.add_argument("--sensor", default="unknown")
    command.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    command.set_defaults(run=run_import_command)


def run_import_command(args) -> None:
    from hsijax.datasets import build_dataset
    from hsijax.readers import read_cube, read_labels, read_wavelengths
    from hsijax.scenes import Scene

    cube, wavelengths = read_cube(args.file, args.key, tuple(args.shape) if args.shape else None, args.layout)
    if args.wavelengths is not None:
        wavelengths = read_wavelengths(args.wavelengths)
    labels = read_labels(args.gt, args.gt_key) if args.gt is not None else None
    if labels is not None and labels.shape != cube.shape[:2]:
        raise HsijaxError(
            f"{args.gt}: ground truth shape {labels.shape} differs from the image's {cube.shape[:2]}"
        )
    scene = Scene(args.name, args.sensor, cube, labels, wavelengths)
    return build_dataset(scene, args.data_dir, source=str(args.file))


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


def run_prepare_command(args) -> None:
    from hsijax.published import prepare_scene

    return prepare_scene(args.scene, args.data_dir, args.manual_dir)


def quiet_tfds() -> None:
    """TFDS logs every step at INFO; keep warnings, and its progress bars only on a terminal."""
    import absl.logging
    import tensorflow_datasets as tfds

    absl.logging.set_verbosity(absl.logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # one line per retry otherwise
    if not sys.stderr.isatty():
        tfds.disable_progress_bar()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hsijax", description="A shared encoder for hyperspectral images from any sensor."
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_demo(subparsers)
    add_import(subparsers)
    add_prepare(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("import", "prepare"):
        quiet_tfds()
    try:
        # TFDS prints "Downloading and preparing ..." (naming the staging folder) on stdout; drop
        # it, so that stdout holds only the result and an error is the only line on stderr.
        quiet = args.command in ("import", "prepare")
        with open(os.devnull, "w") as devnull:
            with contextlib.redirect_stdout(devnull) if quiet else contextlib.nullcontext():
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
