"""The data flows one way: lower layers never import higher ones, nor Flask or click."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "refmatch"
ORDER = [
    "errors",
    "config",
    "models",
    "importing",
    "store",
    "embed",
    "index",
    "match",
    "risk",
    "service",
    "queries",
    "batch",
    "web",
    "cli",  # the top: it registers every shell's commands (serve starts the web app)
]
SHELLS = {"cli", "web", "batch", "__main__"}


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def imports_of(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_upward_imports(path):
    rel = path.relative_to(PACKAGE)
    own = rel.parts[0].removesuffix(".py")
    if own.startswith("cli_"):
        own = "cli"
    if own in ("__init__",) or own not in ORDER and own not in SHELLS:
        return
    for name in imports_of(path):
        top = name.split(".")[0]
        if own not in SHELLS:
            assert top not in ("flask", "click"), f"{rel} imports {name}: keep it in the shells"
        if top == "refmatch" and name != "refmatch":
            target = layer(name)
            if target in ORDER and own in ORDER:
                assert ORDER.index(target) <= ORDER.index(own), f"{rel} imports {name} (a higher layer)"
