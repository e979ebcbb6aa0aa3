"""Deterministic fault injection, for the tests of what a killed or crashed run leaves behind.

The binaries call ``point(name, step)`` at their named phases. With the environment variable
``STATE_OF_SPARSITY_FAULT=<action>:<point>`` set, the process is killed there with SIGKILL
(``kill``: no clean-up runs, as with ``kill -9``) or an internal error is raised (``raise``).
``<point>`` is a phase name, or ``<name>@<step>`` for the phases called with a step:

- ``train@<step>``: training, after the optimizer step ``<step>`` (before its checkpoint);
- ``checkpoint@<step>``: mid-write of checkpoint ``<step>`` (its temporary file written, not
  yet renamed into place);
- ``eval``: the final evaluation has started;
- ``export``: the SavedModel is in place, ``results.json`` not yet written.

Unset (the normal case), ``point`` does nothing.
"""

from __future__ import annotations

import os
import signal

__all__ = ["ENV", "point"]

ENV = "STATE_OF_SPARSITY_FAULT"


def point(name: str, step: int | None = None) -> None:
    """The named phase ``name`` (at ``step``) is reached: fail here if asked to."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    action, _, where = spec.partition(":")
    if where not in (name, f"{name}@{step}"):
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "raise":
        raise RuntimeError(f"fault injected at {where} ({ENV})")
