"""The errors the binaries turn into exit statuses (``cli/launch.guarded``).

``UsageError``: a bad flag value or input (a file that is missing, corrupt or of the wrong kind,
a run directory made with other flags); exit status 2 and one line naming the flag or file.
``TrainingDiverged``: the NaN guard stopped training; exit status 1. Anything else is an
internal error: exit status 3, its traceback kept in a log file.
"""

from __future__ import annotations

import contextlib

__all__ = ["TrainingDiverged", "UsageError", "one_line", "usage_errors"]


class UsageError(ValueError):
    """A bad flag value or input; reported in one line, without a traceback."""


class TrainingDiverged(RuntimeError):
    """The loss or the weights became NaN or infinite; the message names the last good
    checkpoint."""


def one_line(text, limit: int = 300) -> str:
    """The first line of ``text``, cut to ``limit`` characters (library errors can carry
    kilobytes of object dumps after a good first line)."""
    lines = str(text).strip().splitlines() or [""]
    line = lines[0].strip()
    return line if len(line) <= limit else line[: limit - 3] + "..."


@contextlib.contextmanager
def usage_errors(prefix: str = "", types=(ValueError, OSError)):
    """Re-raises ``types`` raised inside the block as a one-line ``UsageError`` (prefixed with
    ``prefix``, e.g. the flag whose input was being read). Wrap only code that reads inputs."""
    try:
        yield
    except UsageError:
        raise
    except types as error:
        raise UsageError(f"{prefix}{one_line(error)}") from None
