"""Gates on the architecture (#11), read from the source with ``ast``; nothing is imported.

* The core (engine, definitions, aggregations, events, routing, interventions, patterns) imports
  no I/O or framework library, not even through another project module, and no project module
  outside itself but :mod:`signals_stream.errors`.
* The worker's views (``signals_stream/api/``) import no agent; the app module imports no agent
  and no view.
* Only the storage seam (``tables/row_store.py``) touches Faust's store internals.
* No import cycle among the project's modules, counting module-level imports.

An import "at module level" runs when the module is imported: inside ``try`` / ``if`` / ``with``
at the top too, but not under ``if TYPE_CHECKING:`` nor in a function or class body. ``from X
import Y`` is an import of the module ``X.Y`` when that is a project module, else of ``X``; an
import of a package counts as an edge to it only when it names the package itself (its
``__init__``), not when it names one of its modules. Each checker is a plain function over
parsed sources; the ``test_checker_*`` tests run it on small synthetic trees first, so a green
gate cannot be a checker that sees nothing.
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("signals_stream", "agents", "tables")

CORE = tuple(
    f"signals_stream.{name}"
    for name in (
        "engine",
        "definitions",
        "aggregations",
        "events",
        "routing",
        "interventions",
        "patterns",
        "warehouse.sql",
        "warehouse.urls",
        "batch.compile",
        "batch.dialects",
        "batch.filters",
        "batch.incremental",
        "batch.values",
        "collector.mapping",
        "datasets.models",
        "datasets.anchors",
        "datasets.bundle",
    )
)
# What the core may import from the rest of the project. (Not signals_stream.settings: it
# resolves host names with `socket` and reads the environment; the core takes plain values.)
CORE_MAY_IMPORT = ("signals_stream.errors", "signals_stream.warehouse.urls")
IO_LIBRARIES = (
    "faust",
    "mode",
    "aiokafka",
    "kafka",
    "redis",
    "aiohttp",
    "yarl",
    "rocksdict",
    "asyncio",
    "socket",
    "subprocess",
    "http",
    "urllib.request",
    "psycopg",
    "duckdb",
    "httpx",
    "venusian",
    "prometheus_client",
)
VIEWS = "signals_stream.api"
AGENTS = "agents"
APP = "signals_stream.app"
STORAGE_SEAM = "tables.row_store"
# Faust store internals: RocksDB handles, changelog offsets, and the current-event context.
STORE_INTERNALS = frozenset(
    {"_dbs", "_db_for_partition", "set_persisted_offset", "offset_key", "_current_event"}
)


# --- parsing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Module:
    """One project module: its dotted name, path relative to the repository, and syntax tree."""

    name: str
    path: str
    tree: ast.Module
    is_package: bool


@dataclass(frozen=True)
class Import:
    """One imported name, resolved to an absolute dotted name.

    Attributes:
        importer: the importing module.
        target: the project module imported (see the module docstring), or for a library the
            dotted name as written (``from a.b import c`` gives ``a.b.c``).
        line: line number in the importer.
        project: ``target`` is a project module.
        module_level: runs when the importer is imported (see the module docstring).
        typing_only: under ``if TYPE_CHECKING:``.
    """

    importer: str
    target: str
    line: int
    project: bool
    module_level: bool
    typing_only: bool

    @property
    def runtime(self) -> bool:
        return not self.typing_only


Project = Mapping[str, Module]


def module_name(relative: str) -> tuple[str, bool]:
    """``a/b/c.py`` -> ``("a.b.c", False)``; ``a/b/__init__.py`` -> ``("a.b", True)``."""
    parts = relative.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def parse_project(sources: Mapping[str, str]) -> dict[str, Module]:
    """Modules from ``{relative path: source text}``."""
    modules = {}
    for path, text in sources.items():
        name, is_package = module_name(path)
        modules[name] = Module(name, path, ast.parse(text, filename=path), is_package)
    return modules


def project_sources(root: Path = ROOT) -> dict[str, str]:
    """Every ``.py`` file of the project's packages, by path relative to ``root``."""
    sources = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "__pycache__" not in path.parts:
                sources[path.relative_to(root).as_posix()] = path.read_text(encoding="utf-8")
    return sources


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


_DYNAMIC = frozenset({"import_module", "__import__"})


def _walk(
    node: ast.AST, *, module_level: bool, typing_only: bool
) -> Iterator[tuple[ast.AST, bool, bool]]:
    """Every node below ``node`` with (module_level, typing_only) as of its position."""
    for child in ast.iter_child_nodes(node):
        yield child, module_level, typing_only
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            yield from _walk(child, module_level=False, typing_only=typing_only)
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for statement in child.body:
                yield statement, module_level, True
                yield from _walk(statement, module_level=module_level, typing_only=True)
            for statement in child.orelse:
                yield statement, module_level, typing_only
                yield from _walk(statement, module_level=module_level, typing_only=typing_only)
        else:
            yield from _walk(child, module_level=module_level, typing_only=typing_only)


def _resolve_project(name: str, modules: Project, tops: Collection[str]) -> str | None:
    """The project module ``name`` denotes: itself, else its longest project-module prefix."""
    parts = name.split(".")
    if parts[0] not in tops:
        return None
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imports_of(module: Module, modules: Project) -> list[Import]:
    """Every import in ``module``: statements, and ``import_module("...")`` / ``__import__``
    calls with a literal name, wherever they are."""
    found: list[Import] = []
    tops = {name.split(".")[0] for name in modules}

    def add(written: str, line: int, level: bool, typing: bool, *, member: str | None) -> None:
        full = ".".join(part for part in (written, member) if part)
        target = full if full in modules else _resolve_project(written, modules, tops)
        if target is not None:
            found.append(Import(module.name, target, line, True, level, typing))
        else:
            found.append(Import(module.name, full, line, False, level, typing))

    for node, level, typing in _walk(module.tree, module_level=True, typing_only=False):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno, level, typing, member=None)
        elif isinstance(node, ast.ImportFrom):
            if node.module == "__future__":
                continue
            base = node.module or ""
            if node.level:
                package = module.name.split(".")
                if not module.is_package:
                    package.pop()
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, *([node.module] if node.module else [])])
            for alias in node.names:
                member = None if alias.name == "*" else alias.name
                add(base, node.lineno, level, typing, member=member)
        elif (
            isinstance(node, ast.Call)
            and (
                (isinstance(node.func, ast.Name) and node.func.id in _DYNAMIC)
                or (isinstance(node.func, ast.Attribute) and node.func.attr in _DYNAMIC)
            )
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            add(node.args[0].value, node.lineno, level, typing, member=None)
    return found


def all_imports(modules: Project) -> dict[str, list[Import]]:
    return {name: imports_of(module, modules) for name, module in modules.items()}


def within(name: str, prefixes: Iterable[str]) -> bool:
    """``name`` is one of ``prefixes`` or a module under one of them."""
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def where(modules: Project, item: Import) -> str:
    return f"{modules[item.importer].path}:{item.line}"


# --- checkers -----------------------------------------------------------------------------------


def module_graph(imports: Mapping[str, list[Import]]) -> dict[str, dict[str, Import]]:
    """importer -> imported project module -> the first import making the edge (module level,
    at run time)."""
    graph: dict[str, dict[str, Import]] = {name: {} for name in imports}
    for name, items in imports.items():
        for item in items:
            if item.project and item.module_level and item.runtime and item.target != name:
                graph[name].setdefault(item.target, item)
    return graph


def strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative), each sorted, in discovery order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in graph:
                    continue
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph[succ]))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def _cycle_through(graph: Mapping[str, Mapping[str, Import]], members: list[str]) -> list[str]:
    """A shortest cycle from ``members[0]`` back to it, inside the component (BFS)."""
    inside, start = set(members), members[0]
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for succ in sorted(graph[node]):
                if succ == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if succ in inside and succ not in previous:
                    previous[succ] = node
                    following.append(succ)
        frontier = following
    return [start, start]


def import_cycles(modules: Project) -> list[str]:
    """One line per strongly connected component of the module-level import graph: its modules
    and one cycle through them with the file:line of each import."""
    graph = module_graph(all_imports(modules))
    found = []
    for component in strongly_connected(graph):
        if len(component) < 2:
            continue
        cycle = _cycle_through(graph, component)
        steps = " -> ".join(
            f"{a} ({where(modules, graph[a][b])})" for a, b in zip(cycle, cycle[1:], strict=False)
        )
        found.append(f"{len(component)} modules {component}: {steps} -> {cycle[0]}")
    return found


def _chains(
    imports: Mapping[str, list[Import]], start: str, *, module_level_only: bool
) -> dict[str, list[Import]]:
    """Every project module ``start`` imports at run time, directly or not, with one chain of
    imports leading there (BFS: a shortest one)."""
    chains: dict[str, list[Import]] = {start: []}
    frontier = [start]
    while frontier:
        following = []
        for name in frontier:
            for item in imports.get(name, ()):
                if not (item.project and item.runtime) or item.target in chains:
                    continue
                if module_level_only and not item.module_level:
                    continue
                chains[item.target] = [*chains[name], item]
                following.append(item.target)
        frontier = following
    return chains


def _chain_text(modules: Project, chain: list[Import]) -> str:
    return "".join(f" -> {item.target} ({where(modules, item)})" for item in chain)


def core_io_imports(
    modules: Project, core: Iterable[str] = CORE, libraries: Iterable[str] = IO_LIBRARIES
) -> list[str]:
    """Library imports of ``libraries`` that a core module makes at run time, itself or through
    the project modules it imports (at any depth, function-level imports included): one line
    per offending import, with a shortest chain from the core to it."""
    imports = all_imports(modules)
    libraries = tuple(libraries)
    found: dict[tuple[str, int, str], tuple[int, str]] = {}
    for name in sorted(n for n in modules if within(n, core)):
        for reached, chain in _chains(imports, name, module_level_only=False).items():
            for item in imports[reached]:
                if not item.project and item.runtime and within(item.target, libraries):
                    via = _chain_text(modules, chain)
                    line = f"{name}{via} imports {item.target} ({where(modules, item)})"
                    key = (reached, item.line, item.target)
                    found[key] = min(found.get(key, (len(chain), line)), (len(chain), line))
    return sorted(line for _, line in found.values())


def core_project_imports(
    modules: Project, core: Iterable[str] = CORE, allowed: Iterable[str] = CORE_MAY_IMPORT
) -> list[str]:
    """Project modules outside the core (and ``allowed``) that a core module imports."""
    core, allowed = tuple(core), tuple(allowed)
    found = []
    for name, items in sorted(all_imports(modules).items()):
        if not within(name, core):
            continue
        for item in items:
            if item.project and not within(item.target, (*core, *allowed)):
                kind = "" if item.runtime else " (under TYPE_CHECKING)"
                found.append(f"{where(modules, item)}: {name} imports {item.target}{kind}")
    return found


def forbidden_imports(
    modules: Project, importers: Iterable[str], forbidden: Iterable[str]
) -> list[str]:
    """Imports, at any level (functions and TYPE_CHECKING included), by modules ``importers``
    of project modules under ``forbidden``."""
    importers, forbidden = tuple(importers), tuple(forbidden)
    found: list[str] = []
    for name, items in sorted(all_imports(modules).items()):
        if within(name, importers):
            for item in items:  # `from m import a, b` is one import of m
                line = f"{where(modules, item)}: {name} imports {item.target}"
                if item.project and within(item.target, forbidden) and line not in found:
                    found.append(line)
    return found


def forbidden_on_import(
    modules: Project, importers: Iterable[str], forbidden: Iterable[str]
) -> list[str]:
    """Project modules under ``forbidden`` that importing a module of ``importers`` loads,
    through module-level imports at any depth (the first forbidden module of each chain)."""
    importers, forbidden = tuple(importers), tuple(forbidden)
    imports = all_imports(modules)
    found = []
    for name in sorted(n for n in modules if within(n, importers)):
        for reached, chain in sorted(_chains(imports, name, module_level_only=True).items()):
            if (
                chain
                and within(reached, forbidden)
                and not any(within(item.target, forbidden) for item in chain[:-1])
            ):
                found.append(f"{name}{_chain_text(modules, chain)}")
    return found


def _names_touched(tree: ast.Module) -> Iterator[tuple[str, int]]:
    """Attribute names, imported names and ``getattr``-family string names in ``tree``, plus
    ``.data`` read on anything called a table (Faust's ``Table.data`` is its store)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            yield node.attr, node.lineno
            if node.attr == "data" and "table" in ast.unparse(node.value).lower():
                yield f"{ast.unparse(node.value)}.data", node.lineno
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.rsplit(".", 1)[-1], node.lineno
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"getattr", "setattr", "hasattr", "delattr"}
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            yield node.args[1].value, node.lineno


def store_internals(
    modules: Project, seam: str = STORAGE_SEAM, names: frozenset[str] = STORE_INTERNALS
) -> list[str]:
    """Uses of Faust store internals outside the storage seam."""
    found = []
    for name, module in sorted(modules.items()):
        if name == seam:
            continue
        touched = sorted(
            (line, text)
            for text, line in _names_touched(module.tree)
            if text in names or text.endswith(".data")
        )
        found += [f"{module.path}:{line}: {text}" for line, text in touched]
    return found


# --- the project --------------------------------------------------------------------------------


@cache
def _project() -> dict[str, Module]:
    """The project's modules, parsed once per session (the checkers only read them)."""
    return parse_project(project_sources())


def _report(problems: list[str]) -> str:
    return f"{len(problems)} found:\n  " + "\n  ".join(problems)


def test_the_project_is_found() -> None:
    modules = _project()
    assert {*CORE, VIEWS, APP, AGENTS, STORAGE_SEAM} <= modules.keys()
    assert len(modules) > 100
    assert all(not within(m, ("tests", "bench")) for m in modules)


def test_the_core_imports_no_io_or_framework_library() -> None:
    problems = core_io_imports(_project())
    assert not problems, _report(problems)


def test_the_core_imports_only_the_core_and_the_errors() -> None:
    problems = core_project_imports(_project())
    assert not problems, _report(problems)


def test_no_view_imports_an_agent() -> None:
    problems = forbidden_imports(_project(), [VIEWS], [AGENTS])
    assert not problems, _report(problems)


def test_importing_a_view_loads_no_agent() -> None:
    problems = forbidden_on_import(_project(), [VIEWS], [AGENTS])
    assert not problems, _report(problems)


def test_the_app_module_imports_no_agent_and_no_view() -> None:
    problems = forbidden_imports(_project(), [APP], [AGENTS, VIEWS])
    assert not problems, _report(problems)


def test_importing_the_app_loads_no_agent_and_no_view() -> None:
    problems = forbidden_on_import(_project(), [APP], [AGENTS, VIEWS])
    assert not problems, _report(problems)


def test_only_the_storage_seam_touches_faust_store_internals() -> None:
    modules = _project()
    assert store_internals(modules, seam="") != [], "the seam itself is seen"
    problems = store_internals(modules)
    assert not problems, _report(problems)


def test_no_import_cycle_among_the_project_modules() -> None:
    problems = import_cycles(_project())
    assert not problems, _report(problems)


# --- the checkers on synthetic trees ------------------------------------------------------------


def _tree(sources: Mapping[str, str]) -> dict[str, Module]:
    """Modules from ``{"pkg/sub/mod": source}`` (``.py`` left out)."""
    return parse_project({f"{path}.py": text for path, text in sources.items()})


def test_checker_resolves_imports_as_documented() -> None:
    modules = _tree(
        {
            "pkg/__init__": "",
            "pkg/a": (
                "from pkg import b\nfrom pkg.sub import thing\n"
                "import pkg.sub.leaf\nimport os.path\n"
            ),
            "pkg/b": "from . import a\nfrom .sub.leaf import x\nfrom .. import outside\n",
            "pkg/sub/__init__": "from .leaf import y\n",
            "pkg/sub/leaf": "from urllib import request\nfrom urllib.parse import quote\n",
        }
    )
    found = all_imports(modules).items()
    targets = {n: [(i.target, i.project) for i in items] for n, items in found}
    assert targets["pkg.a"] == [
        ("pkg.b", True),  # a module of the package
        ("pkg.sub", True),  # a name of the package's __init__
        ("pkg.sub.leaf", True),
        ("os.path", False),
    ]
    assert targets["pkg.b"] == [("pkg.a", True), ("pkg.sub.leaf", True), ("outside", False)]
    assert targets["pkg.sub"] == [("pkg.sub.leaf", True)]
    assert targets["pkg.sub.leaf"] == [("urllib.request", False), ("urllib.parse.quote", False)]


def test_checker_finds_cycles_and_ignores_deferred_imports() -> None:
    modules = _tree(
        {
            "pkg/__init__": "",
            "pkg/a": "import pkg.b\n",
            "pkg/b": "try:\n    from pkg import c\nexcept ImportError:\n    c = None\n",
            "pkg/c": "if True:\n    from pkg.a import name\n",
            "pkg/d": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import e\n"
                "else:\n    import pkg.f\n"
            ),
            "pkg/e": "import pkg.d\n",  # d imports e for the type checker only: no cycle
            "pkg/f": "def later():\n    import pkg.d\nclass K:\n    import pkg.d\n",
            "pkg/g": "import pkg.g\n",  # itself: not a cycle between modules
        }
    )
    cycles = import_cycles(modules)
    assert len(cycles) == 1, cycles
    assert cycles[0].startswith("3 modules ['pkg.a', 'pkg.b', 'pkg.c']: pkg.a (pkg/a.py:1)")
    assert "pkg.b (pkg/b.py:2) -> pkg.c (pkg/c.py:2) -> pkg.a" in cycles[0]
    graph = module_graph(all_imports(modules))
    assert set(graph["pkg.d"]) == {"pkg.f"} and not graph["pkg.f"]
    assert strongly_connected({"x": ["y"], "y": ["x", "z"], "z": []}) == [["z"], ["x", "y"]]


def test_checker_finds_io_in_the_core_directly_and_through_other_modules() -> None:
    modules = _tree(
        {
            "app/__init__": "",
            "app/core/__init__": "",
            "app/core/pure": "from app.errors import Oops\nfrom app.core import helper\n",
            "app/core/helper": "def f():\n    from app import util\n",
            "app/core/typed": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import faust\n"
            ),
            "app/core/late": "def f():\n    import asyncio\n",
            "app/errors": "class Oops(Exception): ...\n",
            "app/util": "import urllib.request\nimport urllib.parse\n",
        }
    )
    problems = core_io_imports(modules, core=["app.core"])
    assert problems == [  # pure reaches util too, through helper: util's import is listed once
        "app.core.helper -> app.util (app/core/helper.py:2) imports urllib.request (app/util.py:1)",
        "app.core.late imports asyncio (app/core/late.py:2)",
    ]
    outside = core_project_imports(modules, core=["app.core"], allowed=["app.errors"])
    assert outside == ["app/core/helper.py:2: app.core.helper imports app.util"]


def test_checker_finds_agents_imported_by_views_and_the_app() -> None:
    modules = _tree(
        {
            "svc/__init__": "",
            "svc/app": "import svc.config\n",
            "svc/config": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import agents.x\n"
            ),
            "svc/api/__init__": "",
            "svc/api/view": (
                "import importlib\nimport svc.app\n"
                "def handler():\n    from agents import x\n"
                "    importlib.import_module('agents.y')\n"
            ),
            "svc/api/other": "import svc.wiring\n",
            "svc/wiring": "import agents.y\n",
            "agents/__init__": "",
            "agents/x": "",
            "agents/y": "",
        }
    )
    assert forbidden_imports(modules, ["svc.api"], ["agents"]) == [
        "svc/api/view.py:4: svc.api.view imports agents.x",
        "svc/api/view.py:5: svc.api.view imports agents.y",
    ]
    assert forbidden_on_import(modules, ["svc.api"], ["agents"]) == [
        "svc.api.other -> svc.wiring (svc/api/other.py:1) -> agents.y (svc/wiring.py:1)"
    ]
    assert forbidden_imports(modules, ["svc.app"], ["agents", "svc.api"]) == []
    assert forbidden_imports(modules, ["svc.config"], ["agents"]) == [
        "svc/config.py:3: svc.config imports agents.x"  # TYPE_CHECKING counts here
    ]
    assert forbidden_on_import(modules, ["svc.app"], ["agents"]) == []


def test_checker_finds_store_internals_outside_the_seam() -> None:
    modules = _tree(
        {
            "tables/__init__": "",
            "tables/row_store": "def f(s):\n    return s._dbs, s._table.data\n",
            "tables/other": (
                "from faust.streams import _current_event\n"
                "def f(table, store):\n"
                "    getattr(store, '_dbs', {})\n"
                "    store._db_for_partition(0).get(b'k')\n"
                "    store.set_persisted_offset(None, 1)\n"
                "    return table.data, store.data\n"
            ),
            "agents/x": "import faust.streams\nfaust.streams._current_event()\n",
        }
    )
    assert store_internals(modules) == [
        "agents/x.py:2: _current_event",
        "tables/other.py:1: _current_event",
        "tables/other.py:3: _dbs",
        "tables/other.py:4: _db_for_partition",
        "tables/other.py:5: set_persisted_offset",
        "tables/other.py:6: table.data",
    ]
