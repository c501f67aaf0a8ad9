"""Process-wide runtime settings: how many CPU threads torch may use.

Measured on this 2-core machine: a PPO update that takes 2.3 s on one thread takes 19.6 s on
torch's default two threads as soon as anything else runs on the other core (OpenMP threads
wait on each other), and a 50-step collection goes from 0.12 s to 7 s. Networks here are small
(3x256 MLPs), so one thread per process is the robust default; sweeps get their parallelism
from processes. `PLAYGROUND_THREADS=N` overrides it.
"""
from __future__ import annotations

import os


def configure_threads(default: int = 1) -> int:
    import torch

    try:
        n = int(os.environ.get("PLAYGROUND_THREADS", default))
    except ValueError:
        n = default
    n = max(1, n)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def set_threads(threads: int = 0) -> int:
    """`threads` > 0 overrides the default for this process and its Finetuner (through
    PLAYGROUND_THREADS); 0 keeps it. Benchmarks' `--threads` uses this."""
    if threads > 0:
        os.environ["PLAYGROUND_THREADS"] = str(threads)
    return configure_threads()
