"""The pretrained shared encoder that ships inside the package: `load_pretrained()` in Python and
``--checkpoint pretrained`` in every command.

The weights are a saved model (`hsijax.save_model`: parameters, model config and checksums, no
optimiser state) under ``hsijax/weights/shared_encoder``, read from the installed package, so they
load offline. What they were trained on, how, and what they score is in
``hsijax/weights/MODEL_CARD.md``; `hsijax export` wrote them from the pretraining run it names.
"""

from __future__ import annotations

from pathlib import Path

from hsijax.errors import HsijaxError

NAME = "pretrained"  # what --checkpoint and load_model accept for the shipped weights
WEIGHTS = Path(__file__).parent / "weights" / "shared_encoder"
MODEL_CARD = WEIGHTS.parent / "MODEL_CARD.md"


def checkpoint_path(path) -> Path:
    """``path`` itself, or the shipped weights for the name ``pretrained`` (a folder of that name is
    still reachable as ``./pretrained``)."""
    if str(path) != NAME:
        return Path(path)
    if not (WEIGHTS / "state").is_dir():
        raise HsijaxError(f"{WEIGHTS}: the shipped weights are missing from this installation of hsijax")
    return WEIGHTS


def load_pretrained():
    """The shipped pretrained `Model` (see the model card for its data, training and limits)."""
    from hsijax.checkpoint import load_model

    return load_model(NAME)
