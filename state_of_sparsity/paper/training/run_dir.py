"""A run directory (``--output_dir``): checking it before anything is written, the record of
the flags it was made with, and the temporaries a killed run leaves behind.

``run.json`` holds ``{"binary": ..., "flags": {...}}``: every flag of the binary except those a
rerun may change (where the data lives, how long to train, how often to checkpoint, log or
evaluate, the distribution strategy, verbosity). A rerun whose recorded flags differ is a
``UsageError`` naming each differing flag, raised before anything is written.
"""

from __future__ import annotations

import json
import os
import shutil
import time

from absl import flags

from state_of_sparsity.paper.training.checkpoints import read_json, write_json
from state_of_sparsity.paper.training.errors import UsageError

FLAGS = flags.FLAGS

__all__ = [
    "RUN_RECORD",
    "RunClock",
    "check_output_dir",
    "check_flags",
    "check_output_file",
    "check_record",
    "create",
    "remove_stale_temporaries",
    "write_record",
]

RUN_RECORD = "run.json"


def _nearest_existing(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path


def check_output_dir(path: str, flag: str = "output_dir") -> None:
    """``UsageError`` unless ``path`` is, or can be created as, a writable directory.
    Writes nothing."""
    if not path:
        raise UsageError(f"--{flag} is required.")
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"--{flag}={path} exists and is not a directory.")
    existing = _nearest_existing(path)
    if not os.path.isdir(existing):
        raise UsageError(f"--{flag}={path} cannot be created: {existing} is a file.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--{flag}={path} is not writable ({existing} is read-only).")


def check_output_file(path: str, flag: str) -> None:
    """``UsageError`` unless ``path`` can be written as a file: not a directory, in an
    existing writable directory. Writes nothing."""
    if os.path.isdir(path):
        raise UsageError(f"--{flag}={path} is a directory; give a file name.")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(f"--{flag}={path}: the directory {parent} does not exist.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"--{flag}={path}: the directory {parent} is not writable.")


def create(path: str, flag: str = "output_dir") -> None:
    """Creates the directory ``path`` (and its parents); ``UsageError`` if that fails."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--{flag}={path} cannot be created: {error.strerror}.") from None


def _canonical(value):
    return json.loads(json.dumps(value))


def _default(name: str):
    """The default of absl flag ``name`` as a record stores it (None if no such flag)."""
    return _canonical(FLAGS[name].default) if name in FLAGS else None


def check_record(output_dir: str, binary: str, flags: dict) -> bool:
    """Compares ``flags`` (name -> value) with the record in ``output_dir``; returns whether
    there is one. ``UsageError`` naming every differing flag, or the other binary, on a
    mismatch."""
    path = os.path.join(output_dir, RUN_RECORD)
    if not os.path.isfile(path):
        return False
    record = read_json(path)
    if not isinstance(record, dict) or not isinstance(record.get("flags"), dict):
        raise UsageError(f"{path} is corrupt (not a run record).")
    if record.get("binary") != binary:
        raise UsageError(
            f"--output_dir={output_dir} holds a {record.get('binary')} run, not a {binary} run; "
            "use another --output_dir."
        )
    check_flags(output_dir, record["flags"], flags)
    return True


def check_flags(output_dir: str, recorded: dict, flags: dict) -> None:
    """``UsageError`` naming every flag whose value in ``flags`` differs from ``recorded``.

    A flag missing from ``recorded`` matches when it has its default value: it was added to the
    binary after the run was made, and its default is what that run did."""
    current = _canonical(flags)
    differing = [
        f"--{name}={recorded.get(name)!r} (now {current.get(name)!r})"
        for name in sorted(set(recorded) | set(current))
        if recorded.get(name) != current.get(name)
        and not (name not in recorded and current.get(name) == _default(name))
    ]
    if differing:
        raise UsageError(
            f"--output_dir={output_dir} holds a run made with other flags: {', '.join(differing)}; "
            "rerun with the recorded values, or use another --output_dir."
        )


def write_record(output_dir: str, binary: str, flags: dict) -> None:
    write_json(os.path.join(output_dir, RUN_RECORD), {"binary": binary, "flags": _canonical(flags)})


def remove_stale_temporaries(output_dir: str) -> list[str]:
    """Removes what a run killed mid-write leaves in ``output_dir`` and its ``checkpoints/``:
    ``*.tmp`` files, ``.tmp-*`` checkpoints, ``.export-*`` staging directories. Returns their
    paths. Only names this package writes as temporaries are touched."""
    removed = []
    for directory in (output_dir, os.path.join(output_dir, "checkpoints")):
        if not os.path.isdir(directory):
            continue
        for name in sorted(os.listdir(directory)):
            path = os.path.join(directory, name)
            if name.startswith(".export-") and os.path.isdir(path):
                shutil.rmtree(path)
            elif (name.endswith(".tmp") or name.startswith(".tmp-")) and os.path.isfile(path):
                os.remove(path)
            else:
                continue
            removed.append(path)
    return removed


class RunClock:
    """Wall-clock seconds of a run across invocations: ``base`` (what earlier invocations had
    spent when the restored checkpoint was written) plus the time since this invocation made
    it."""

    def __init__(self):
        self.base = 0.0
        self._start = time.monotonic()

    def __call__(self) -> float:
        return self.base + time.monotonic() - self._start
