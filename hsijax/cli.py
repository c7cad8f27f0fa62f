"""The `hsijax` command. Each subcommand parses its flags and calls one library function.

User errors (`HsijaxError`) print one line on stderr and exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hsijax", description="A shared encoder for hyperspectral images from any sensor."
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_demo(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except HsijaxError as error:
        print(f"hsijax {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hsijax {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
