"""Run records of a Ray run without shared storage: what goes to the node, what comes back.

The launcher keeps the run directory; the worker on a Ray node writes a private copy of it
(`private_run_dir`) and never touches the launcher's files. Between the two:

- `seed_files(run_dir)` (launcher side): the bytes the node needs to run or resume: the
  config (checkpoint paths that point at files are shipped under `inputs/` and rewritten), the
  findings, status, metrics, logs and `checkpoints/` so far. `materialize(private, files)`
  (node side) writes them.
- `RecordStreamer(private, seeded)` (node side): `changes()` returns what changed since the last
  call, as ops: `("append", rel, offset, bytes)` for the growing files (metrics.jsonl,
  engine.log, worker.out, TensorBoard events; a file that shrank is sent whole), and
  `("replace", rel, bytes)` for the rest (status.json, worker.json, checkpoints/*). Files the
  launcher owns (config.toml, findings.json, inputs/) never go back.
- `Mailbox`: a Ray actor holding batches until the launcher drains them (`put`, `drain`); it
  works wherever it is placed, also for a `ray://` client whose disk no node can see.
- `apply_ops(run_dir, ops)` (launcher side) writes them into the launcher's run directory;
  appends are idempotent (written at their offset). The worker's experiment-log entry comes
  back as `EXPERIMENT_ENTRY` and is appended to the launcher's `experiments/log.md`.
- `STOP_REQUEST`: a file `playground stop` (another process) drops into the launcher's run
  directory; the sweep that owns the Ray task sees it and cancels the task.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from engine.config.schema import CHECKPOINT_KEYS
from engine.config.tomlio import read_toml, write_flat
from engine.records import TERMINAL, append_experiment_log, now_iso, read_status, write_status

STOP_REQUEST = "stop.request"
EXPERIMENT_ENTRY = "experiment-entry.md"
APPEND_FILES = ("metrics.jsonl", "engine.log", "worker.out")
LAUNCHER_OWNED = ("config.toml", "findings.json", STOP_REQUEST, EXPERIMENT_ENTRY)
SEEDED = ("config.toml", "findings.json", "status.json", "worker.json", "metrics.jsonl", "engine.log", "worker.out")
INPUTS = "inputs"


def _is_append(rel: str) -> bool:
    return rel in APPEND_FILES or Path(rel).name.startswith("events.out.tfevents.")


# --- launcher side: what the node gets --------------------------------------------------

def seed_files(run_dir: Path) -> dict[str, bytes]:
    """The launcher's run directory as {relative path: bytes} for the node, with checkpoint
    inputs (ladder files named by absolute path in config.toml) shipped under inputs/."""
    run_dir = Path(run_dir)
    files: dict[str, bytes] = {}
    for rel in SEEDED:
        p = run_dir / rel
        if p.is_file():
            files[rel] = p.read_bytes()
    ck = run_dir / "checkpoints"
    if ck.is_dir():
        for p in sorted(ck.iterdir()):
            if p.is_file() and not p.name.endswith(".tmp"):
                files[f"checkpoints/{p.name}"] = p.read_bytes()
    table = read_toml(run_dir / "config.toml")
    moved = False
    for key in CHECKPOINT_KEYS:
        spec = table.get(key)
        if not isinstance(spec, str) or not spec.endswith(".pt") or not Path(spec).is_file():
            continue
        src = Path(spec)
        rel = f"{INPUTS}/{key}-{src.name}"
        files[rel] = src.read_bytes()
        side = src.with_name(src.name + ".json")
        if side.is_file():
            files[rel + ".json"] = side.read_bytes()
        table[key] = "{PRIVATE}/" + rel
        moved = True
    if moved:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "config.toml"
            write_flat(out, table, header=f"run {run_dir.name}: the launcher's config with checkpoints shipped "
                                          "to this node")
            files["config.toml"] = out.read_bytes()
    return files


# --- node side ----------------------------------------------------------------------------

def materialize(private: Path, files: dict[str, bytes]) -> dict[str, int]:
    """Write the seeded files into `private`; returns their sizes (the streamer's offsets)."""
    private.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for rel, data in files.items():
        if rel == "config.toml":
            data = data.replace(b"{PRIVATE}/", (str(private) + "/").encode())
        p = private / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        sizes[rel] = len(data)
    return sizes


class RecordStreamer:
    """What changed in a private run directory since the last `changes()` call."""

    def __init__(self, private: Path, seeded: dict[str, int] | None = None):
        self.private = Path(private)
        self.offsets: dict[str, int] = {}     # append files: bytes already sent (or seeded)
        self.stamps: dict[str, tuple] = {}    # other files: (mtime_ns, size) last sent
        for rel, size in (seeded or {}).items():
            p = self.private / rel
            if _is_append(rel):
                self.offsets[rel] = size
            elif p.is_file():
                st = p.stat()
                self.stamps[rel] = (st.st_mtime_ns, st.st_size)

    def _files(self) -> list[str]:
        out = []
        for root, dirs, names in os.walk(self.private):
            dirs[:] = [d for d in dirs if d != INPUTS]
            for n in names:
                rel = os.path.relpath(os.path.join(root, n), self.private)
                if rel in LAUNCHER_OWNED or n.endswith(".tmp") or n.startswith("."):
                    continue
                out.append(rel)
        return sorted(out)

    def mark(self) -> tuple[dict, dict]:
        """What has been sent so far, for `rewind`."""
        return dict(self.offsets), dict(self.stamps)

    def rewind(self, mark: tuple[dict, dict]) -> None:
        """Forget the `changes()` since `mark`: a batch that may not have reached the launcher (the
        task cancelled while sending it) is sent again with the next one; appends are written at
        their offset and replacements whole, so a batch that did arrive is not doubled."""
        self.offsets, self.stamps = dict(mark[0]), dict(mark[1])

    def changes(self, final: bool = False) -> list[tuple]:
        """Ops for what changed; with `final` (the worker has exited) also its experiment-log entry."""
        ops: list[tuple] = []
        for rel in self._files():
            p = self.private / rel
            try:
                st = p.stat()
                if _is_append(rel):
                    sent = self.offsets.get(rel, 0)
                    if st.st_size == sent:
                        continue
                    if st.st_size < sent:  # rewritten shorter (metrics truncated on resume): send it whole
                        data = p.read_bytes()
                        ops.append(("replace", rel, data))
                        self.offsets[rel] = len(data)
                    else:
                        with open(p, "rb") as f:
                            f.seek(sent)
                            data = f.read()
                        ops.append(("append", rel, sent, data))
                        self.offsets[rel] = sent + len(data)
                else:
                    stamp = (st.st_mtime_ns, st.st_size)
                    if self.stamps.get(rel) == stamp:
                        continue
                    ops.append(("replace", rel, p.read_bytes()))
                    self.stamps[rel] = stamp
            except FileNotFoundError:  # replaced or removed between listing and reading
                continue
        entry = self.private / EXPERIMENT_ENTRY
        if final and entry.is_file() and "entry" not in self.stamps:
            text = entry.read_text()
            text = text[text.find("## "):] if "## " in text else text  # without the log file's header
            ops.append(("experiment-entry", text.replace(str(self.private), "{RUN_DIR}")))
            self.stamps["entry"] = (0, 0)
        return ops


class Mailbox:
    """Batches of ops from the nodes' tasks until the launcher drains them (a Ray actor)."""

    def __init__(self) -> None:
        self.boxes: dict[str, list] = {}

    def put(self, key: str, ops: list, final: dict | None = None) -> None:
        self.boxes.setdefault(key, []).append((ops, final))

    def drain(self) -> dict[str, list]:
        out, self.boxes = self.boxes, {}
        return out


# --- launcher side: what comes back ---------------------------------------------------------

def _write_at(p: Path, offset: int, data: bytes) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "r+b" if p.exists() else "wb") as f:
        f.truncate(offset)
        f.seek(offset)
        f.write(data)


def _replace(p: Path, data: bytes) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, p)


def apply_ops(run_dir: Path, ops: list) -> None:
    """Write a node's ops into the launcher's run directory."""
    run_dir = Path(run_dir)
    for op in ops:
        if op[0] == "append":
            _, rel, offset, data = op
            _write_at(run_dir / rel, offset, data)
        elif op[0] == "replace":
            _, rel, data = op
            _replace(run_dir / rel, data)
        elif op[0] == "experiment-entry":
            append_experiment_log(op[1].replace("{RUN_DIR}", str(run_dir)))


def request_stop(run_dir: Path) -> None:
    (Path(run_dir) / STOP_REQUEST).write_text("stop\n")


def stop_ray_run(run_dir: Path, grace_s: float = 10.0, poll_s: float = 0.2) -> dict:
    """`playground stop` on a Ray run (from any process): ask the sweep that owns its task to
    cancel it, wait for the run's final status; when no sweep answers (it is gone, and Ray
    ended its tasks with it), record the run `stopped`."""
    run_dir = Path(run_dir)
    request_stop(run_dir)
    end = time.monotonic() + grace_s + 20.0
    while time.monotonic() < end:
        st = read_status(run_dir) or {}
        if st.get("status") in TERMINAL:
            return st
        time.sleep(poll_s)
    clear_stop_request(run_dir)
    return write_status(run_dir, "stopped", ended=now_iso(),
                        error="stopped by the launcher: no sweep answered the stop request for its Ray task "
                              "(the sweep that started it is gone)")


def stop_requested(run_dir: Path) -> bool:
    return (Path(run_dir) / STOP_REQUEST).exists()


def clear_stop_request(run_dir: Path) -> None:
    try:
        (Path(run_dir) / STOP_REQUEST).unlink()
    except FileNotFoundError:
        pass
