"""Imports flow one way: `tui/` and `engine/cli/` (the views) -> `engine/launcher/` (the launch
core) -> the rest of `engine/`. Read from the sources with `ast` (imports inside functions
count too), so no module has to be imported to be checked."""
from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[1] / "engine"
VIEW_LIBRARIES = {"typer", "rich", "textual", "textual_plot", "click", "plotext"}


def package_of(path: Path) -> str:
    return ".".join(path.relative_to(ENGINE.parent).with_suffix("").parts[:-1])


def imported_modules(source: str, package: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import statement in `source`, a module of `package`
    (for `from a import b` both `a` and `a.b`, since b may be a submodule)."""
    tree = ast.parse(source)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((node.lineno, mod))
            out += [(node.lineno, f"{mod}.{a.name}") for a in node.names]
    return out


def engine_sources(exclude_cli: bool = True) -> list[Path]:
    return [p for p in sorted(ENGINE.rglob("*.py")) if not (exclude_cli and "cli" in p.relative_to(ENGINE).parts[:1])]


def test_engine_outside_the_cli_imports_no_view_library():
    bad = []
    for path in engine_sources():
        for line, mod in imported_modules(path.read_text(), package_of(path)):
            top = mod.split(".")[0]
            if top in VIEW_LIBRARIES or top == "tui" or mod.startswith("engine.cli"):
                bad.append(f"{path.relative_to(ENGINE.parent)}:{line} imports {mod}")
    assert not bad, "\n".join(bad)


def test_the_launch_core_is_not_imported_by_lower_layers():
    """The launcher sits above training, envs, config and records: those never import it."""
    lower = ("config", "envs", "algos", "train", "validate", "nets.py", "checkpoints.py", "records.py", "runtime.py",
             "errors.py", "sr.py")
    bad = []
    for path in engine_sources():
        rel = path.relative_to(ENGINE)
        if rel.parts[0] not in lower:
            continue
        for line, mod in imported_modules(path.read_text(), package_of(path)):
            if mod.startswith("engine.launcher"):
                bad.append(f"{rel}:{line} imports {mod}")
    assert not bad, "\n".join(bad)


def test_the_checker_sees_relative_and_nested_imports():
    src = "import os\ndef f():\n    from ..cli import common\n    import rich.table\n    from . import x\n"
    mods = [m for _, m in imported_modules(src, "engine.train")]
    assert {"engine.cli", "engine.cli.common", "rich.table", "engine.train.x", "os"} <= set(mods)


FRONTS = (ENGINE.parent / "tui", ENGINE / "cli")


def front_sources() -> list[Path]:
    return [p for root in FRONTS for p in sorted(root.rglob("*.py"))]

def front_violations(source: str, package: str) -> list[tuple[int, str]]:
    """Imports of `engine` other than `engine.errors` and the names of `engine.launcher`'s public API
    (`__all__`; a submodule such as `engine.launcher.plan` is not part of it)."""
    import engine.launcher

    bad = []
    for line, mod in imported_modules(source, package):
        if mod.split(".")[0] != "engine" or mod.startswith("engine.cli"):
            continue
        if mod in ("engine", "engine.launcher") or mod == "engine.errors" or mod.startswith("engine.errors."):
            continue
        parent, _, name = mod.rpartition(".")
        if parent == "engine.launcher" and name in engine.launcher.__all__:
            continue
        if parent == "engine" and name in ("launcher", "errors"):
            continue
        bad.append((line, mod))
    return bad


def test_the_fronts_import_only_the_launcher_and_errors():
    """tui/ and engine/cli/ reach the engine through one door: `engine.launcher` (plus `engine.errors`)."""
    bad = []
    for path in front_sources():
        pkg = ".".join(path.relative_to(ENGINE.parent).with_suffix("").parts[:-1])
        bad += [f"{path.relative_to(ENGINE.parent)}:{line} imports {mod}"
                for line, mod in front_violations(path.read_text(), pkg)]
    assert not bad, "\n".join(bad)


def test_the_front_checker_flags_submodules_and_other_engine_modules():
    src = ("from engine.launcher import plan_run\nfrom engine.errors import UserError\n"
           "def f():\n    from engine.launcher.plan import launch\n    from engine.records import TERMINAL\n"
           "    import engine.figures\n    from engine import launcher\n    from . import common\n")
    flagged = {m for _, m in front_violations(src, "engine.cli")}
    assert flagged == {"engine.launcher.plan", "engine.launcher.plan.launch", "engine.records",
                       "engine.records.TERMINAL", "engine.figures"}
    assert front_violations("from engine.launcher import no_such_name\n", "tui") == [(1, "engine.launcher.no_such_name")]


def engine_modules() -> dict[str, Path]:
    """Every module of the engine by its dotted name (a package by its own name)."""
    out = {}
    for path in sorted(ENGINE.rglob("*.py")):
        parts = path.relative_to(ENGINE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the engine modules it imports (at the top or in a function). An import of an enclosing
    package is left out: Python runs a package's __init__ before any of its modules anyway."""
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = set()
        for _, mod in imported_modules(path.read_text(), package):
            while mod and mod not in modules:
                mod = mod.rpartition(".")[0]
            if mod and mod != name and not name.startswith(mod + "."):
                deps.add(mod)
        graph[name] = deps
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circles_between_engine_modules():
    found = circles(import_graph(engine_modules()))
    assert not found, "import circles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_circle_finder_finds_one():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_envs_algos_and_nets_import_no_config_or_launcher():
    """The bottom floors get what they need (e.g. the ManiSkill process count) from above or from
    engine.runtime / engine.settings; they never reach up into the config or the launch core."""
    bad = []
    for name, path in engine_modules().items():
        if not (name.startswith(("engine.envs", "engine.algos")) or name == "engine.nets"):
            continue
        for line, mod in imported_modules(path.read_text(), package_of(path) if path.name != "__init__.py" else name):
            if mod.startswith(("engine.config", "engine.launcher")):
                bad.append(f"{path.relative_to(ENGINE.parent)}:{line} imports {mod}")
    assert not bad, "\n".join(bad)


def test_nothing_below_the_launch_core_imports_it():
    """Only the launch core itself and the fronts import `engine.launcher`: no module of engine/ outside
    engine/launcher/ and engine/cli/ does (figures and analysis read runs through engine.run_files,
    engine.sr and engine.records; running the reproduce table is the launcher's reproduce_job)."""
    bad = []
    for name, path in engine_modules().items():
        if name.startswith(("engine.launcher", "engine.cli")):
            continue
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for line, mod in imported_modules(path.read_text(), package):
            if mod == "engine.launcher" or mod.startswith("engine.launcher."):
                bad.append(f"{path.relative_to(ENGINE.parent)}:{line} imports {mod}")
    assert not bad, "\n".join(bad)


# The floors of engine/ below the launch core, bottom first (docs/architecture.md): a module imports
# modules of its own floor or lower ones only. Keyed by the first name under engine/ (a package or a
# module); a new one must be placed here.
FLOORS = [
    {"engine", "errors", "settings", "oslock", "sr", "run_files", "archive_sizes"},   # plain Python facts
    {"runtime", "kernels", "runlock", "records"},                                      # processes, run records
    {"envs", "nets"},                                                                  # environments, networks
    {"algos", "checkpoints"},                                                          # algorithm pieces, checkpoint files
    {"config"},                                                                        # presets -> RunConfig
    {"validate", "train", "doctor"},                                                   # rules, training loops
    {"worker", "__main__", "jobs", "analysis", "figures", "bench"},                    # jobs and readers of runs
    {"launcher"},                                                                      # the launch core
    {"cli"},                                                                           # the typer front
]


def floor_of(module: str) -> int | None:
    part = module.split(".")[1] if "." in module else module
    return next((i for i, names in enumerate(FLOORS) if part in names), None)


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """`a -> b` for every import of a module on a higher floor than the importer's; an unplaced part is one too."""
    bad = []
    for a, deps in sorted(graph.items()):
        fa = floor_of(a)
        if fa is None:
            bad.append(f"{a} is on no floor: place it in FLOORS")
            continue
        bad += [f"{a} (floor {fa}) -> {b} (floor {floor_of(b)})" for b in sorted(deps)
                if floor_of(b) is None or floor_of(b) > fa]
    return bad


def test_no_upward_arrows_between_the_floors():
    bad = upward_imports(import_graph(engine_modules()))
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_the_floor_checker_flags_an_upward_import():
    assert upward_imports({"engine.envs.maniskill": {"engine.config.limits"}}) == [
        "engine.envs.maniskill (floor 2) -> engine.config.limits (floor 4)"]
    assert upward_imports({"engine.figures": {"engine.launcher.listing"}}) == [
        "engine.figures (floor 6) -> engine.launcher.listing (floor 7)"]
    assert upward_imports({"engine.launcher.plan": {"engine.config.loading", "engine.records"}}) == []
    assert upward_imports({"engine.newthing": set()}) == ["engine.newthing is on no floor: place it in FLOORS"]
