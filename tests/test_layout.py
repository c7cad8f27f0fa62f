"""The package's layout: stages import only the stages below them, no import circles, nothing of the
library imports the CLI or an experiment, at most a dozen modules side by side, and no test support
in the runtime package.

Imports are read as text with `ast` (nothing is run), imports inside functions included: a lazy
import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hsijax"

# Each stage may import itself and the stages before it, never one after it.
STAGES = ("core", "data", "models", "train", "evaluate", "configs", "experiments", "api", "cli")
CORE = {"hsijax.errors", "hsijax.files", "hsijax.spectral", "hsijax.metrics"}


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stage(module: str) -> str:
    if module in CORE:
        return "core"
    if module == "hsijax":
        return "api"  # the public names, gathered from every stage
    return module.split(".")[1] if module.split(".")[1] != "cli" else "cli"


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """{module: the package's modules it imports}, from the source text of every module under ``root``."""
    modules = {module_name(p, root): p for p in root.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                # ``from package import module`` depends on the module; ``from module import name`` on the module
                found = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
            else:
                continue
            for target in found:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import of a later stage (or of the package root, which gathers them all) by a module."""
    return [f"{module} ({stage(module)}) imports {target} ({stage(target)})"
            for module, targets in sorted(graph.items()) for target in sorted(targets)
            if STAGES.index(stage(target)) > STAGES.index(stage(module))]


def test_there_are_no_import_circles():
    assert circles(import_graph()) == []


def test_stages_import_only_the_stages_before_them():
    assert upward_imports(import_graph()) == []


def test_only_the_cli_and_the_package_root_reach_the_experiments():
    graph = import_graph()
    for module, targets in graph.items():
        if stage(module) not in ("cli", "api", "experiments"):
            assert not {t for t in targets if stage(t) in ("experiments", "cli")}, module
        if stage(module) != "cli":
            assert "hsijax.cli" not in targets, module


def test_the_checks_see_a_circle_an_upward_import_and_a_lazy_import(tmp_path):
    """The walker itself: a lazy import inside a function closes a circle and counts as upward."""
    package = tmp_path / "hsijax"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "data" / "__init__.py").write_text("")
    (package / "errors.py").write_text("from hsijax.data.readers import read\n")
    (package / "data" / "readers.py").write_text("def read():\n    from hsijax import errors\n")
    graph = import_graph(package)
    assert graph["hsijax.data.readers"] == {"hsijax.errors"}
    assert circles(graph) == [["hsijax.data.readers", "hsijax.errors"]]
    assert upward_imports(graph) == ["hsijax.errors (core) imports hsijax.data.readers (data)"]


@pytest.mark.parametrize("folder", [PACKAGE, *sorted(p for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())])
def test_at_most_a_dozen_modules_side_by_side(folder):
    entries = [p for p in folder.iterdir() if p.suffix == ".py" and p.name != "__init__.py"
               or (p / "__init__.py").is_file()]
    assert len(entries) <= 12, sorted(p.name for p in entries)


def test_test_support_is_not_in_the_runtime_package():
    names = {module_name(p).rpartition(".")[2] for p in PACKAGE.rglob("*.py")}
    assert not names & {"testing", "dummy_data", "writers", "conftest"}
