"""The library is a closed set of modules: nothing in it imports the paper's harness."""

import ast
import pathlib
import subprocess
import sys

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "state_of_sparsity"
LIBRARY = sorted(p for p in PACKAGE.rglob("*.py") if "paper" not in p.relative_to(PACKAGE).parts)


def _imports(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_no_library_module_imports_the_harness():
    offenders = {
        str(path.relative_to(PACKAGE)): name
        for path in LIBRARY
        for name in _imports(path)
        if name.startswith("state_of_sparsity.paper")
    }
    assert not offenders


def test_importing_the_library_loads_no_harness_module():
    modules = [
        ".".join(("state_of_sparsity", *p.relative_to(PACKAGE).with_suffix("").parts))
        for p in LIBRARY
    ]
    modules = [m.removesuffix(".__init__") for m in modules]
    code = (
        f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
        "print(sorted(m for m in sys.modules if m.startswith('state_of_sparsity.paper')))"
    )
    env = {"KERAS_BACKEND": "jax", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
