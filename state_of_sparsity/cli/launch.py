"""What every binary does around its own work: ``--help``, quiet logs, exit statuses.

absl's ``--help`` lists the key flags of ``sys.argv[0]``, which is the launcher (``bin/*.py`` or
a console script), not the module defining the flags: ``run`` registers them for it.
"""

from __future__ import annotations

import logging as std_logging
import sys

from absl import app, flags, logging

__all__ = ["UsageError", "guarded", "run"]


class UsageError(ValueError):
    """A bad flag value; reported without a traceback."""


def guarded(program, name: str, argv) -> int:
    """Runs ``program()`` as the binary ``name``'s main and returns its exit status.

    TensorFlow's and absl's logs are kept to warnings and errors. A stray positional argument,
    a bad flag value or input (``ValueError``, ``UsageError`` included) or a missing file prints
    one line and returns 2; a diverged run (``TrainingDiverged``) prints one line and returns 1.
    """
    from state_of_sparsity.training.checkpoints import TrainingDiverged

    logging.set_verbosity(logging.WARNING)
    std_logging.getLogger("tensorflow").setLevel(std_logging.ERROR)
    if len(argv) > 1:
        print(f"{name}: error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    try:
        return program()
    except TrainingDiverged as error:
        print(f"{name}: diverged: {error}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as error:
        print(f"{name}: error: {error}", file=sys.stderr)
        return 2


def run(main, module_name: str) -> None:
    """``app.run(main)`` with ``module_name``'s key flags shown by ``--help``."""
    for flag in flags.FLAGS.get_key_flags_for_module(module_name):
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    app.run(main)
