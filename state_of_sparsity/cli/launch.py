"""``--help`` for the binaries: absl lists the key flags of ``sys.argv[0]``, which is the
launcher (``bin/*.py`` or a console script), not the module defining the flags."""

from __future__ import annotations

import sys

from absl import app, flags

__all__ = ["run"]


def run(main, module_name: str) -> None:
    """``app.run(main)`` with ``module_name``'s key flags shown by ``--help``."""
    for flag in flags.FLAGS.get_key_flags_for_module(module_name):
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    app.run(main)
