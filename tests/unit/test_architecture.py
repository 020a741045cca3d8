"""The architecture, held against the code: which stage may import which (DESIGN §3,
ARCHITECTURE.md), where GitHub Actions is known, and the size of every function."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "refinery"

STAGES = ("core", "upstream", "plan", "builder", "hints", "store", "index", "site", "gitops", "cli")
#: What each stage may import of ours (besides itself). The arrows of ARCHITECTURE.md.
ALLOWED: dict[str, frozenset[str]] = {
    "core": frozenset(),
    "upstream": frozenset({"core"}),
    "hints": frozenset({"core"}),
    "store": frozenset({"core"}),
    "plan": frozenset({"core", "upstream", "store", "hints"}),
    "builder": frozenset({"core", "upstream", "store", "hints"}),
    "index": frozenset({"core", "upstream", "store"}),
    "site": frozenset({"core", "store", "hints"}),
    "gitops": frozenset({"core", "store", "plan"}),
    "cli": frozenset(STAGES) | {"pipeline"},
    "pipeline": frozenset(STAGES) - {"cli", "gitops"},
}
#: Only these know GitHub Actions (its environment and workflow commands).
ACTIONS_AWARE = frozenset({"gitops", "cli"})
ACTIONS_MARKERS = ("GITHUB_", "ACTIONS_", "::group::", "::error", "::stop-commands::")
MAX_LINES = 80
MAX_PARAMS = 8


def _modules() -> Iterator[tuple[str, Path, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        stage = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        yield stage, path, ast.parse(path.read_text(), filename=str(path))


def _imports(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """``(line, stage)`` for every import of ``refinery.<stage>`` (absolute or bare)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] if node.level == 0 else []
            if node.module == "refinery":
                names = [f"refinery.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "refinery" and len(parts) > 1:
                yield node.lineno, parts[1]


def test_the_stages_are_the_packages() -> None:
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert packages == set(STAGES)


def test_no_relative_imports() -> None:
    """Absolute imports only: an import line names the stage it crosses into."""
    relative = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
        for _stage, path, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level
    ]
    assert relative == []


def test_imports_point_one_way() -> None:
    wrong = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {stage} imports {target}"
        for stage, path, tree in _modules()
        if stage in ALLOWED
        for line, target in _imports(tree)
        if target != stage and target in ALLOWED and target not in ALLOWED[stage]
    ]
    assert wrong == []


def test_only_gitops_and_cli_know_github_actions() -> None:
    found = []
    for stage, path, tree in _modules():
        if stage in ACTIONS_AWARE:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                hit = next((m for m in ACTIONS_MARKERS if m in node.value), None)
                # docstrings may mention GitHub; code may not read or write its protocol
                if hit and not _is_docstring(tree, node):
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {hit}")
            if isinstance(node, ast.Import | ast.ImportFrom):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                mods += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                found += [
                    f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: imports {m}"
                    for m in mods
                    if m == "github" or m.startswith("github.")
                ]
    assert found == []


def _is_docstring(tree: ast.Module, const: ast.Constant) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and body[0].value is const:
                return True
    return False


def _functions() -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    for _stage, path, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                yield f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}", node


def _params(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    a = fn.args
    names = [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
    return len([n for n in names if n not in ("self", "cls")])


def test_no_function_is_long() -> None:
    long = [
        f"{where}: {fn.end_lineno - fn.lineno + 1} lines"
        for where, fn in _functions()
        if fn.end_lineno is not None and fn.end_lineno - fn.lineno + 1 > MAX_LINES
    ]
    assert long == []


def test_no_function_takes_many_parameters() -> None:
    wide = [f"{where}: {_params(fn)}" for where, fn in _functions() if _params(fn) > MAX_PARAMS]
    assert wide == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from refinery.builder import x\n", [(1, "builder")]),
        ("import refinery.store.ledger\n", [(1, "store")]),
        ("from refinery import cli\n", [(1, "cli")]),
        ("import os\nfrom packaging import version\n", []),
    ],
)
def test_the_import_reader_sees_every_form(source: str, expected: list[tuple[int, str]]) -> None:
    assert list(_imports(ast.parse(source))) == expected
