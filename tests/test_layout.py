"""The house rules, read from the code's own imports (an ``ast`` walk; nothing is imported).

- the pure core (``plan/``, ``models``, ``diagnostics``, ``render/``) reaches no I/O library,
  not even through another module;
- the emulator imports only ``errors``, ``secrets`` and the Dify protocol, so it can be lifted
  out whole;
- nothing imports the CLI, and no two modules (nor two packages) import each other, however
  indirectly;
- imports sit at the top of a module; a function imports only an optional extra;
- at most 13 modules at the top level, no package below it with more than 14 modules and
  sub-packages (the CLI's one module per command aside), no module over 450 lines, no
  function over 60.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "provisioner"

IO_LIBRARIES = frozenset({"httpx", "psycopg", "starlette", "uvicorn", "rich", "subprocess"})
PURE = ("provisioner.plan", "provisioner.models", "provisioner.diagnostics", "provisioner.render")
EMULATOR_MAY_IMPORT = (
    "provisioner.emulator",
    "provisioner.errors",
    "provisioner.secrets",
    "provisioner.dify.protocol",
    "provisioner.dify.routing",
    "provisioner.rongcloud.observations",
)
"""The probe report (``rongcloud.observations``) is the contract between ``provisioner probe``
and the emulator's profile, as the Dify protocol is between the Dify client and stand-in."""
OPTIONAL_EXTRAS = (
    "psycopg",
    "starlette",
    "uvicorn",
    "rich",
    "provisioner.emulator",
    "provisioner.state.postgres",
)
"""What a function may import: the optional extras ([emulator], [postgres], [tty]) and the
modules built on them, so a core install never loads them."""
MAX_TOP_LEVEL_MODULES = 13
"""``__init__`` and ``__main__`` included; everything else is a package of its subsystem."""
MAX_PACKAGE_ENTRIES = 14
"""Modules and sub-packages directly in one package (``cli/``, one module per command, aside)."""
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60


@dataclass(frozen=True)
class Import:
    module: str
    line: int
    local: bool
    """Inside a function body."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _walk(node: ast.AST, local: bool) -> Iterator[tuple[ast.AST, bool]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child):
            continue  # annotations only: never executed
        inner = local or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
        yield child, inner
        yield from _walk(child, inner)


def imports_of(name: str) -> list[Import]:
    """Every import ``name`` executes (TYPE_CHECKING blocks aside), absolute module names."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node, local in _walk(ast.parse(path.read_text(encoding="utf-8")), local=False):
        if isinstance(node, ast.Import):
            found += [Import(alias.name, node.lineno, local) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    [*package.split(".")[: len(package.split(".")) - node.level + 1], base]
                )
            for alias in node.names:  # `from pkg import module` imports the module
                sub = f"{base}.{alias.name}"
                found.append(Import(sub if sub in MODULES else base, node.lineno, local))
    return found


def _within(module: str, prefixes: tuple[str, ...] | frozenset[str]) -> bool:
    return any(module == prefix or module.startswith(f"{prefix}.") for prefix in prefixes)


def reachable(start: str) -> set[str]:
    """The project modules importing ``start`` loads, itself included (a module loads the
    ``__init__`` of each package above it; a function's imports run only when it is called)."""
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for each in imports_of(name):
            if each.local:
                continue
            parts = each.module.split(".")
            todo += [
                ".".join(parts[:n])
                for n in range(1, len(parts) + 1)
                if ".".join(parts[:n]) in MODULES
            ]
    return seen


@pytest.mark.parametrize("start", [m for m in MODULES if _within(m, PURE)])
def test_the_pure_core_reaches_no_io_library(start: str) -> None:
    offending = {
        f"{name}:{each.line} imports {each.module}"
        for name in reachable(start)
        for each in imports_of(name)
        if not each.local and each.module.split(".")[0] in IO_LIBRARIES
    }
    assert not offending


def test_the_emulator_imports_only_errors_secrets_the_dify_protocol_and_the_probe_report() -> None:
    offending = [
        f"{name}:{each.line} imports {each.module}"
        for name in MODULES
        if _within(name, ("provisioner.emulator",))
        for each in imports_of(name)
        if each.module.startswith("provisioner") and not _within(each.module, EMULATOR_MAY_IMPORT)
    ]
    assert offending == []


def test_nothing_imports_the_cli() -> None:
    offending = [
        f"{name}:{each.line}"
        for name in MODULES
        if not _within(name, ("provisioner.cli", "provisioner.__main__"))
        for each in imports_of(name)
        if _within(each.module, ("provisioner.cli",))
    ]
    assert offending == []


def test_no_import_cycles() -> None:
    graph = {
        name: {each.module for each in imports_of(name) if each.module in MODULES} - {name}
        for name in MODULES
    }
    cycles = [sorted(group) for group in _strongly_connected(graph) if len(group) > 1]
    assert cycles == []


def room(module: str) -> str:
    """The room a module lives in: its top-level package, or itself at the top level."""
    return ".".join(module.split(".")[:2])


def test_no_import_cycles_between_rooms() -> None:
    """The packages and top-level modules form layers: no two reach each other."""
    graph: dict[str, set[str]] = {}
    for name in MODULES:
        targets = {room(each.module) for each in imports_of(name) if each.module in MODULES}
        graph.setdefault(room(name), set()).update(targets - {room(name)})
    cycles = [sorted(group) for group in _strongly_connected(graph) if len(group) > 1]
    assert cycles == []


def test_functions_import_only_optional_extras() -> None:
    offending = [
        f"{name}:{each.line} imports {each.module}"
        for name in MODULES
        for each in imports_of(name)
        if each.local and not _within(each.module, OPTIONAL_EXTRAS)
    ]
    assert offending == []


def test_no_package_holds_more_than_14_modules_and_sub_packages() -> None:
    crowded = {}
    for package in (p.parent for p in PACKAGE.rglob("*/__init__.py")):
        entries = [p for p in package.iterdir() if p.suffix == ".py" and p.name != "__init__.py"]
        entries += [p for p in package.iterdir() if (p / "__init__.py").is_file()]
        if len(entries) > MAX_PACKAGE_ENTRIES and package.name != "cli":
            crowded[package.name] = len(entries)
    assert crowded == {}


def test_the_top_level_is_the_vocabulary_and_the_pipeline() -> None:
    modules = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert len(modules) <= MAX_TOP_LEVEL_MODULES, modules


def test_no_module_over_450_lines() -> None:
    long = {
        name: lines
        for name, path in MODULES.items()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_no_function_over_60_lines() -> None:
    long = [
        f"{name}:{node.lineno} {node.name} {node.end_lineno - node.lineno + 1}"
        for name, path in MODULES.items()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iteratively (the graph is a few hundred modules)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.add(member)
                        if member == node:
                            break
                    groups.append(group)
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return groups
