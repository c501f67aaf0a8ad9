"""The install contract: pyproject.toml declares ranges (no exact pins), constraints.txt fixes
what CI installs (the CPU-only torch, never the CUDA build), and .ci/run runs exactly the
README's test command."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    return reqs


def test_pyproject_has_ranges_not_exact_pins():
    pinned = [r for r in _requirements() if re.search(r"===?", r)]
    assert pinned == [], f"exact pins belong in constraints.txt: {pinned}"
    assert any(r.startswith("psutil") for r in _requirements())


def test_requires_python_has_the_upper_bound_the_wheels_allow():
    spec = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert ">=3.11" in spec and "<3.13" in spec


def test_constraints_pin_the_cpu_torch_and_every_declared_package():
    lines = [ln.split("#")[0].strip() for ln in (ROOT / "constraints.txt").read_text().splitlines()]
    pins = dict(ln.split("==", 1) for ln in lines if ln)
    assert pins["torch"].endswith("+cpu")
    for req in _requirements():
        name = re.split(r"[\[<>=!~; ]", req, maxsplit=1)[0]
        assert name in pins, f"{name} is declared in pyproject.toml but not pinned in constraints.txt"


def test_ci_runs_the_readmes_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    m = re.search(r"with the exact versions CI uses.*?```bash\n(.+?)\n```", readme, re.S)
    assert m, "the README's test command block is missing"
    command = m.group(1).strip()
    assert "-c constraints.txt" in command
    assert command in ci.splitlines()
