"""The seed-fidelity table (docs/seed-fidelity.toml): loading it, checking presets against it, and
rendering it into docs/seed-fidelity.md.

Each row: `preset`, `key`, `seed` (the seed's value), `source` (where the seed's value comes from:
a file of zyc00/OfflineRLPlayGround or an entry of its experiments/log.md), `ours` (the preset's
resolved value) and `why` (required when ours differs). A row is "same" when ours equals the seed's
value or is the role the seed's checkpoint name stands for (engine.checkpoints.SEED_ALIASES).

    python -m engine.validate.fidelity          # re-render the table part of docs/seed-fidelity.md
    python -m engine.validate.fidelity --check  # exit 1 when the doc is stale
"""
from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any

from engine.checkpoints import SEED_ALIASES

ROOT = Path(__file__).resolve().parent.parent.parent
TABLE = ROOT / "docs" / "seed-fidelity.toml"
DOC = ROOT / "docs" / "seed-fidelity.md"
BEGIN, END = "<!-- fidelity-table:begin (rendered from docs/seed-fidelity.toml) -->", "<!-- fidelity-table:end -->"


def load_rows(path: Path = TABLE) -> list[dict[str, Any]]:
    with open(path, "rb") as f:
        return tomllib.load(f)["row"]


def is_same(row: dict[str, Any]) -> bool:
    seed, ours = row["seed"], row["ours"]
    return seed == ours or (isinstance(seed, str) and SEED_ALIASES.get(seed) == ours)


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(rows: list[dict[str, Any]]) -> str:
    """The Markdown tables: the differences first, then every preset's rows."""
    presets: list[str] = []
    for r in rows:
        if r["preset"] not in presets:
            presets.append(r["preset"])
    groups: dict[tuple, list[str]] = {}  # one line per distinct difference, with the presets it holds for
    for r in rows:
        if not is_same(r):
            groups.setdefault((r["key"], _fmt(r["seed"]), _fmt(r["ours"]), r["why"]), []).append(r["preset"])
    out = ["### Differences", "", "| Presets | Key | Seed | Ours | Why |", "|---|---|---|---|---|"]
    for (key, seed, ours, why), ps in groups.items():
        who = "every preset" if ps == presets else ", ".join(ps)
        out.append(f"| {who} | `{key}` | {_cell(seed)} | {_cell(ours)} | {_cell(why)} |")
    for p in presets:
        out += ["", f"### `{p}`", "", "| Key | Seed | Source | Ours | Same? |", "|---|---|---|---|---|"]
        for r in rows:
            if r["preset"] != p:
                continue
            same = "same" if is_same(r) else "**different**"
            out.append(f"| `{r['key']}` | {_cell(_fmt(r['seed']))} | {_cell(r['source'])} | {_cell(_fmt(r['ours']))} "
                       f"| {same} |")
    return "\n".join(out)


def rendered_doc(doc_text: str, rows: list[dict[str, Any]]) -> str:
    """`doc_text` with the part between the markers replaced by `render(rows)`."""
    a, b = doc_text.index(BEGIN) + len(BEGIN), doc_text.index(END)
    return doc_text[:a] + "\n" + render(rows) + "\n" + doc_text[b:]


def main(argv: list[str]) -> int:
    text = DOC.read_text()
    new = rendered_doc(text, load_rows())
    if "--check" in argv:
        if new != text:
            print(f"{DOC} is stale: run python -m engine.validate.fidelity")
            return 1
        return 0
    DOC.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
