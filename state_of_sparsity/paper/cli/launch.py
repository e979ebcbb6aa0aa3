"""What every binary does around its own work: ``--help``, quiet logs, exit statuses.

Exit statuses: 0 done; 1 diverged (the NaN guard stopped training); 2 a usage or input error
(one line on stderr naming the flag or file and what is wrong); 3 an internal error (one line on
stderr pointing to ``<binary>-error.log``, which keeps the traceback, in ``--output_dir`` when
that directory exists, else in the system's temporary directory).

absl's ``--help`` lists the key flags of ``sys.argv[0]``, which is the launcher (``bin/*.py`` or
a console script), not the module defining the flags: ``run`` registers them for it.
"""

from __future__ import annotations

import datetime
import logging as std_logging
import math
import os
import sys
import tempfile
import traceback

from absl import app, flags, logging

from state_of_sparsity.paper.training.errors import TrainingDiverged, UsageError, one_line

__all__ = ["UsageError", "guarded", "run", "warn"]

FLAGS = flags.FLAGS
_devices_initialized = False


def warn(name: str, message: str) -> None:
    """Prints ``<name>: warning: <message>`` on stderr (one line)."""
    print(f"{name}: warning: {message}", file=sys.stderr, flush=True)


def _has_cuda_driver() -> bool:
    import ctypes

    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def _initialize_devices_quietly() -> None:
    """Lets TensorFlow find its devices with stderr captured, and replays what it printed except
    the "failed call to cuInit" line of a machine without a CUDA driver (a CPU machine)."""
    global _devices_initialized
    if _devices_initialized or "tensorflow" not in sys.modules:
        return
    _devices_initialized = True
    import tensorflow as tf

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            tf.config.list_physical_devices()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        lines = captured.read().decode(errors="replace").splitlines(keepends=True)
    expected = not _has_cuda_driver()
    for line in lines:
        if not (expected and "failed call to cuInit" in line):
            sys.stderr.write(line)
    sys.stderr.flush()


def _check_finite_floats(module_name: str) -> None:
    for flag in FLAGS.get_key_flags_for_module(module_name):
        if isinstance(flag.value, float) and not math.isfinite(flag.value):
            raise UsageError(f"--{flag.name}={flag.value} must be a finite number.")


def _is_data_loss(error) -> bool:
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(error, tf.errors.DataLossError)


def _log_internal_error(name: str) -> str:
    """Appends the current exception's traceback to ``<name>-error.log``; returns its path."""
    output_dir = FLAGS["output_dir"].value if "output_dir" in FLAGS else None
    directory = output_dir if output_dir and os.path.isdir(output_dir) else tempfile.gettempdir()
    path = os.path.join(directory, f"{name}-error.log")
    try:
        with open(path, "a") as f:
            f.write(f"=== {datetime.datetime.now().isoformat()} {' '.join(sys.argv)}\n")
            f.write(traceback.format_exc())
    except OSError:
        fd, path = tempfile.mkstemp(prefix=f"{name}-error-", suffix=".log")
        with os.fdopen(fd, "w") as f:
            f.write(traceback.format_exc())
    return path


def guarded(program, name: str, argv, module_name: str | None = None) -> int:
    """Runs ``program()`` as the binary ``name``'s main and returns its exit status.

    TensorFlow's and absl's logs are kept to warnings and errors. Before ``program`` runs, a
    stray positional argument or a non-finite float flag of ``module_name`` is a usage error.
    ``UsageError`` (a bad flag value or input) and TensorFlow's ``DataLossError`` (a corrupt
    record in the input data) print one line and return 2; a diverged run
    (``TrainingDiverged``) prints one line and returns 1; any other exception prints one line
    and returns 3, the traceback going to a log file (see the module docstring).
    """
    logging.set_verbosity(logging.WARNING)
    std_logging.getLogger("tensorflow").setLevel(std_logging.ERROR)
    _initialize_devices_quietly()
    try:
        if len(argv) > 1:
            raise UsageError(f"unexpected arguments {argv[1:]}")
        if module_name is not None:
            _check_finite_floats(module_name)
        return program()
    except TrainingDiverged as error:
        print(f"{name}: diverged: {one_line(error)}", file=sys.stderr)
        return 1
    except UsageError as error:
        print(f"{name}: error: {one_line(error, 1000)}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 -- reported, with the traceback kept in a file
        if _is_data_loss(error):  # a corrupt record met while reading the data
            print(f"{name}: error: corrupt input data: {one_line(error, 300)}", file=sys.stderr)
            return 2
        path = _log_internal_error(name)
        print(
            f"{name}: internal error: {type(error).__name__}: {one_line(error, 200)} "
            f"(traceback in {path})",
            file=sys.stderr,
        )
        return 3


def run(main, module_name: str) -> None:
    """``app.run(main)`` with ``module_name``'s key flags shown by ``--help``; a flag absl cannot
    parse (an unknown flag, a value of the wrong type or not among an enum's) is a usage error:
    one line, exit status 2."""
    for flag in FLAGS.get_key_flags_for_module(module_name):
        FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    _initialize_devices_quietly()  # absl's start-up would otherwise let TensorFlow find them
    name = module_name.rsplit(".", 1)[-1]

    def parse(argv):
        try:
            return FLAGS(argv)
        except flags.Error as error:
            print(f"{name}: error: {one_line(error)}", file=sys.stderr)
            sys.exit(2)

    app.run(main, flags_parser=parse)
