"""The `Diagnosis` one run-doctor rule returns, and the small helpers the rules share."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("error", "warning", "info")


@dataclass
class Diagnosis:
    """One finding of the run doctor: what the metrics show (`symptom`, with the numbers and the
    `iterations` that show it), the known issue it matches, and the fix as config keys."""
    id: str
    severity: str
    title: str
    symptom: str
    known_issue: str
    iterations: list[int] = field(default_factory=list)
    fix: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "severity": self.severity, "title": self.title, "symptom": self.symptom,
                "iterations": list(self.iterations), "known_issue": self.known_issue, "fix": dict(self.fix)}


def spans(iterations: list[int]) -> str:
    """[1, 2, 3, 7, 9, 10] -> '1-3, 7, 9-10' (how a symptom names its iterations)."""
    its = sorted(set(int(i) for i in iterations))
    out: list[str] = []
    i = 0
    while i < len(its):
        j = i
        while j + 1 < len(its) and its[j + 1] == its[j] + 1:
            j += 1
        out.append(str(its[i]) if i == j else f"{its[i]}-{its[j]}")
        i = j + 1
    return ", ".join(out)


def longest_run(iterations: list[int]) -> list[int]:
    """The longest stretch of consecutive iteration numbers in `iterations`."""
    best: list[int] = []
    cur: list[int] = []
    for it in sorted(set(iterations)):
        cur = cur + [it] if cur and it == cur[-1] + 1 else [it]
        if len(cur) > len(best):
            best = cur
    return best


def worst_first(diagnoses: list[Diagnosis]) -> list[Diagnosis]:
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(diagnoses, key=lambda d: (order.get(d.severity, 9), d.id))
