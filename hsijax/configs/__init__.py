"""Configurations (ml_collections). Each file's docstring holds the command that runs it.

`base.get_config` holds every pretraining field with its default; `tiny`, `local`, `unseen`,
`shipped` and `poster` change sizes, scenes and the model; `study` configures the decoder study,
`leave_out` the leave-sensor-out evaluation, `few_label` the few-label study.
`load_config` reads a file or a built-in name and applies ``--config.FIELD=VALUE`` overrides.
"""

from __future__ import annotations

from pathlib import Path

from hsijax.errors import HsijaxError
from hsijax.models.networks import KINDS

PRETRAINING = ("tiny", "local", "unseen", "poster", "shipped")  # built-in names `hsijax pretrain` takes
STUDY = ("study",)
LEAVE_OUT = ("leave_out",)
FEW_LABEL = ("few_label",)


def load_config(path_or_name: str, overrides: list[str] = (), builtins: tuple[str, ...] = PRETRAINING):
    """The ml_collections config of a file or a built-in name, ``NAME:KIND`` passing a network kind to
    its ``get_config`` (e.g. ``tiny:linear_grid``), with ``--config.FIELD=VALUE`` overrides applied
    (unknown fields and wrong types are one `HsijaxError`)."""
    from absl import flags
    from ml_collections import config_flags

    name, _, argument = str(path_or_name).partition(":")
    path = Path(name)
    if name in builtins:
        path = Path(__file__).parent / f"{name}.py"
    if not path.is_file():
        raise HsijaxError(f"{path}: no such config file (or built-in name {builtins})")
    if argument and argument not in KINDS:
        raise HsijaxError(f"{path_or_name}: the config's argument is a network kind, one of {', '.join(KINDS)}")
    flag_values = flags.FlagValues()
    argv = ["hsijax", f"--config={path}" + (f":{argument}" if argument else ""), *overrides]
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
        if argument and "get_config() takes 0 positional arguments" in str(error):
            raise HsijaxError(f"{path}: this config takes no network kind; give it without :{argument}") from None
        raise HsijaxError(f"{path}: {' '.join(str(error).split())}") from None
