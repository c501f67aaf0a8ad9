"""Size checks of a `torch.save` file before torch loads it (checkpoint size bombs).

`torch.save` writes a zip archive of *stored* (uncompressed) entries: a pickle (`data.pkl`) and
one entry per tensor storage. So what a file unpacks to is about its size on disk. A crafted
file can declare entries that expand far beyond that (a deflated entry of zeros: 1 MiB on disk,
1 GiB in memory) or a pickle large enough to stall the unpickler; torch would allocate all of
it before anything could be checked.

`check_archive(path, what, fix, meta=)` reads only the zip's central directory and refuses
(`ArchiveTooBig`, one line) when an entry expands more than stored data can, when the entries
add up to more than the file holds, when the pickle is larger than any playground checkpoint's,
or, given metadata (`meta`: obs_dim, act_dim, actor/critic layers and width), when the tensors
hold more than the networks it describes (with their optimizer state) can. A file that is not a
zip archive is left to torch, which refuses it as corrupt.
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from .errors import UserError

PICKLE_MAX = 4 << 20         # a checkpoint's pickle holds names and numbers: a few KiB
SLACK = 1 << 20              # zip headers, alignment padding, small tensors
EXPANSION_MAX = 1.05         # stored entries unpack to their own size


class ArchiveTooBig(UserError):
    """A checkpoint file whose entries would unpack to more than it can legitimately hold."""


def mlp_params(d_in: int, d_out: int, layers: int, width: int) -> int:
    """Parameters of engine.nets.mlp(d_in, d_out, layers, width)."""
    n, d = 0, d_in
    for _ in range(layers):
        n, d = n + d * width + width, width
    return n + d * d_out + d_out


def network_bytes(meta: dict[str, Any]) -> int | None:
    """Bytes of float32 weights the networks `meta` describes could need at most (policy and
    critic, each with Adam's two moments), or None when the metadata does not say."""
    def num(key: str, default: int | None = None) -> int | None:
        v = meta.get(key, default)
        return v if isinstance(v, int) and not isinstance(v, bool) and 0 < v < 1 << 20 else None

    obs = num("obs_dim")
    if obs is None:
        return None
    total = 0
    if (act := num("act_dim")) is not None:
        total += mlp_params(obs, act, num("actor_layers", 3) or 3, num("actor_width", 256) or 256) + act
    total += mlp_params(obs, 1, num("critic_layers", 3) or 3, num("critic_width", 256) or 256)
    return total * 4 * 3


def _refuse(path: Path, what: str, why: str, fix: str) -> ArchiveTooBig:
    return ArchiveTooBig(f"{what} {path} {why}: refused before loading (damaged or crafted); {fix}")


def check_archive(path: str | Path, what: str, fix: str, *, meta: dict[str, Any] | None = None) -> None:
    """Refuse `path` before torch loads it when its entries would unpack to more than it holds
    (see the module docstring)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
        on_disk = path.stat().st_size
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return  # not a zip archive (or unreadable): torch's own load names the problem
    total = 0
    for info in infos:
        if info.file_size > EXPANSION_MAX * info.compress_size + 4096:
            raise _refuse(path, what, f"has an entry {info.filename!r} that expands from {info.compress_size:,} "
                                      f"to {info.file_size:,} bytes", fix)
        if info.filename.endswith("data.pkl") and info.file_size > PICKLE_MAX:
            raise _refuse(path, what, f"has a {info.file_size:,}-byte pickle (a checkpoint's is a few KiB)", fix)
        total += info.file_size
    if total > EXPANSION_MAX * on_disk + SLACK:
        raise _refuse(path, what, f"declares {total:,} bytes of entries in a {on_disk:,}-byte file", fix)
    limit = network_bytes(meta) if meta else None
    if limit is not None and total > limit + SLACK:
        raise _refuse(path, what, f"holds {total:,} bytes of tensors, more than the networks its metadata "
                                  f"describes can ({limit:,})", fix)
