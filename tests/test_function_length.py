"""No function in engine/ is longer than 80 lines (issue 21): parsed with `ast`, every def and async
def, nested ones and methods included, from its `def` line to its last line (docstring, comments
and blank lines inside count: they are part of what a reader has to hold)."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "engine"
MAX_LINES = 80

# Known offenders, "path relative to the repository:qualified name": none since issue 21 split
# them. An entry needs a reason next to it; the second test keeps the list from going stale.
ALLOWED: frozenset[str] = frozenset()


def long_functions(root: Path = ENGINE, base: Path = ROOT, limit: int = MAX_LINES) -> list[tuple[str, int, int]]:
    """(path relative to `base`:qualname, def line, length) of every function under `root` longer
    than `limit` lines."""
    out: list[tuple[str, int, int]] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(base).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)

        def visit(node: ast.AST, prefix: str) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    name = f"{prefix}{child.name}"
                    length = child.end_lineno - child.lineno + 1
                    if length > limit:
                        out.append((f"{rel}:{name}", child.lineno, length))
                    visit(child, name + ".")
                elif isinstance(child, ast.ClassDef):
                    visit(child, f"{prefix}{child.name}.")
                else:
                    visit(child, prefix)

        visit(tree, "")
    return out


def test_the_scan_finds_a_long_function(tmp_path):
    pkg = tmp_path / "engine"
    pkg.mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    nested = "\n".join(f"            y{i} = {i}" for i in range(MAX_LINES))
    (pkg / "m.py").write_text(f"class C:\n    def ok(self):\n        return 1\n\n\ndef long():\n{body}\n\n\n"
                              f"class D:\n    def outer(self):\n        def inner():\n{nested}\n")
    found = long_functions(pkg, base=tmp_path)
    inner_line = 6 + MAX_LINES + 5
    assert found == [("engine/m.py:long", 6, MAX_LINES + 1),
                     ("engine/m.py:D.outer", inner_line - 1, MAX_LINES + 2),
                     ("engine/m.py:D.outer.inner", inner_line, MAX_LINES + 1)]


def test_no_function_in_engine_is_over_80_lines():
    offenders = [(key, line, n) for key, line, n in long_functions() if key not in ALLOWED]
    lines = [f"{key.split(':')[0]}:{line} {key.split(':')[1]} is {n} lines (limit {MAX_LINES})"
             for key, line, n in offenders]
    assert not offenders, "functions over the limit; split them into named steps:\n" + "\n".join(lines)


def test_the_allow_list_names_only_functions_still_over_the_limit():
    """An entry whose function was split (or renamed) must leave the list, so it cannot hide a new one."""
    still_long = {key for key, _, _ in long_functions()}
    stale = sorted(ALLOWED - still_long)
    assert not stale, f"remove from ALLOWED in {Path(__file__).name}: {', '.join(stale)}"
