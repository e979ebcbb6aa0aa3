"""Command-line programs (absl flags); ``bin/`` holds thin launchers for them.

Importing this package checks that the ``paper`` extra is installed, and if not, prints one line
saying so and exits with status 2 (every binary imports it first, before its own modules).
"""

import importlib.util
import sys

# The paper extra's modules (see pyproject.toml), by import name.
_PAPER_MODULES = (
    "absl",
    "tensorflow",
    "tensorflow_datasets",
    "tensorflow_text",
    "sentencepiece",
    "sacrebleu",
    "sacremoses",
    "matplotlib",
)


def _installed(name: str) -> bool:
    if name in sys.modules:
        return sys.modules[name] is not None
    return importlib.util.find_spec(name) is not None


_missing = [name for name in _PAPER_MODULES if not _installed(name)]
if _missing:
    binary = sys.argv[0].rsplit("/", 1)[-1].removesuffix(".py") or "state_of_sparsity"
    print(
        f"{binary}: error: the paper's binaries need {', '.join(_missing)}: "
        'pip install "state-of-sparsity[paper]".',
        file=sys.stderr,
    )
    sys.exit(2)
