"""The one exception type that hsijax raises for bad user input, and its one-line warnings.

The command line catches `HsijaxError` and prints its message as one line on stderr with a non-zero
exit code, without a traceback; anything else is a bug and keeps its traceback. `warn` prints what a
user should know but need not stop for (a damaged checkpoint skipped, a constant band) as one line.
"""

import sys


class HsijaxError(ValueError):
    """Bad input from the user: a path, an array, an argument. The message names it and says why."""


def describe(error: BaseException, limit: int = 200) -> str:
    """An unexpected library error (Orbax, TensorStore, ArrayRecord) as one short line for a message."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:limit]}{'...' if len(text) > limit else ''}"


def warn(message: str) -> None:
    """One line on stderr: ``hsijax: warning: MESSAGE``."""
    print(f"hsijax: warning: {message}", file=sys.stderr, flush=True)
