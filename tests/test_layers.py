"""The data flows one way, every module in its layer, and nothing imports in a circle.

domain -> config -> store -> crm -> importing -> embed -> index -> match -> risk -> app -> batch -> web -> cli

Only ``index`` touches FAISS, only ``web`` Flask and werkzeug, only ``cli`` click (and
``web.server`` gunicorn). A module that fits no layer fails the test: add it to one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "refmatch"
ORDER = [
    "domain", "config", "store", "crm", "importing", "embed", "index", "match", "risk", "app", "batch", "web", "cli"
]  # fmt: skip
TOP = {"__init__": -1, "__main__": len(ORDER)}  # the package's docstring, and ``python -m refmatch`` (the CLI)
ONLY_IN = {"faiss": "index", "flask": "web", "werkzeug": "web", "click": "cli", "gunicorn": "web"}
MODULES = sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


KNOWN = {module_name(p) for p in MODULES}


def layer_of(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return -1
    head = parts[1]
    if head in TOP:
        return TOP[head]
    assert head in ORDER, f"{module} is in no layer: add {head!r} to ORDER in {__file__}"
    return ORDER.index(head)


def imports_of(path: Path) -> list[tuple[str, int]]:
    """(module imported, line) for every import in the file, at any depth (lazy imports count too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:  # `from refmatch.app import users` imports the module refmatch.app.users
                sub = f"{node.module}.{alias.name}"
                found.append((sub if sub in KNOWN else node.module, node.lineno))
    return found


def guarded(path: Path) -> set[int]:
    """Lines under ``if TYPE_CHECKING:``: annotations only, never run."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_upward_imports_and_libraries_in_their_layer(path):
    own = module_name(path)
    mine = layer_of(own)
    head = own.split(".")[1] if "." in own else ""
    for name, line in imports_of(path):
        top = name.split(".")[0]
        if top in ONLY_IN:
            assert head == ONLY_IN[top], f"{own}:{line} imports {name}: only refmatch.{ONLY_IN[top]} may"
        if top == "refmatch" and name != "refmatch":
            assert layer_of(name) <= mine, f"{own}:{line} imports {name}, a higher layer"


def test_no_import_cycle():
    graph = {module_name(p): set() for p in MODULES}
    for path in MODULES:
        skip = guarded(path)
        for name, line in imports_of(path):
            if name in graph and line not in skip and name != module_name(path):
                graph[module_name(path)].add(name)
    done: set[str] = set()

    def visit(node: str, trail: list[str]) -> None:
        if node in trail:
            cycle = trail[trail.index(node) :] + [node]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if node in done:
            return
        for nxt in sorted(graph[node]):
            visit(nxt, [*trail, node])
        done.add(node)

    for start in sorted(graph):
        visit(start, [])


def test_the_checks_see_what_they_must():
    """The rules above would catch a breach (so a passing run means something)."""
    assert layer_of("refmatch.cli.core") > layer_of("refmatch.app.service") > layer_of("refmatch.domain.models")
    assert {"refmatch.index.faiss_index", "refmatch.web.server", "refmatch.cli.core"} <= KNOWN
    web = PACKAGE / "web" / "__init__.py"
    assert any(name.startswith("flask") for name, _ in imports_of(web))


APP = sorted((PACKAGE / "app").rglob("*.py"))
# helpers that are not operations: they take plain values, never the database
APP_PLAIN = {"passwords", "runtime"}


@pytest.mark.parametrize("path", APP, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_one_style_of_application_api(path):
    """A public app function that reads the database takes the Service first, never a bare db or connection."""
    if path.stem in APP_PLAIN:
        return
    wrong = []
    for node in ast.parse(path.read_text()).body:  # module-level functions only: methods are the Service's own
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_") and node.args.args:
            first = node.args.args[0].arg
            if first in {"db", "conn", "svc", "connection", "database"}:
                wrong.append(f"{node.name}({first}, ...) at line {node.lineno}")
    assert not wrong, f"{path.name}: take `service: Service` first: {wrong}"
