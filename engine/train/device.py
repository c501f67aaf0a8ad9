"""Where a training job's tensors live: the torch device of `RunConfig.device` ('cpu' or 'cuda'),
the random generators that go with it, and moving state to and from it.

The rules the training loop follows (finetuning and pretraining alike):

- Envs are built with `device=` the run's device (a `maniskill:` env on 'cuda' is ManiSkill's
  `physx_cuda` backend with all its envs in one batched env; `pickcube-lite` keeps its state
  in tensors on that device), so observations, rewards and flags arrive on the device.
- Networks are built on the CPU (`built_on_cpu`: one seed gives the same initial weights on
  every device, whatever `torch.set_default_device` says) and then moved with `.to(device)`;
  optimisers are made after the move.
- Two generators (`make_generators`): the index generator stays on the CPU (minibatch
  permutations, IQL's minibatch draws, network-init seeds: `torch.randperm(n, generator=g,
  device=g.device)` then `.to(data.device)`, so the index streams do not depend on the device);
  actions are sampled with the sampling generator, which lives where the policy's mean
  lives. On the CPU both are one and the same generator, so a CPU run draws exactly what it drew
  before the device work.
- What defines "the same experiment" is drawn on the CPU whatever the device, so cpu and cuda
  runs of one config and seed see the same episodes: the twin's episode keys (its generator is a
  CPU one: the eval set, the training envs' and the offline dataset's episodes), the offline
  dataset's action noise (drawn with the index generator and moved: `nets.gaussian_noise`), a
  stochastic evaluation's noise, the minibatch and init streams. Policy sampling in the hot
  loops (online collection, MC re-rollouts, pretraining) stays on the device: it is drawn every
  step, up to ~10^5 rows at a time, and a CPU draw plus a copy per step would cost more than the
  step; and it could not make the runs identical anyway, since the networks' float rounding
  differs by device (oneDNN's fused kernels on the CPU, cuBLAS on the GPU; ~1e-6) and trajectories
  part after the first updates. Equivalence across devices is therefore statistical: the same
  eval set and dataset, seeds whose final SRs agree within their CIs (`python -m engine.bench.devices`).
- Every tensor the loop creates is made on the device of the data it meets (`device=x.device`);
  `tests/test_device.py` checks this statically and by running the loops with factory calls
  that forget `device=` sent to the meta device.
- What is saved is device-independent (`cpu_tree`): a checkpoint or resume file written by a
  CUDA run loads on a CPU-only machine (loads use `map_location='cpu'` as well).
- Metrics are plain Python numbers (`float(t)` / `.item()`), read once per iteration or per
  epoch, not per minibatch (each read waits for the GPU).

The CUDA path was written and reviewed on a machine without a GPU: it is tested on the CPU
only (device-placement spies, the meta-device run above and a static check). A researcher with
a GPU is the first to run it for real.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch

from ..errors import UserError

class DeviceError(UserError, ValueError):
    """A device the run asks for and this machine cannot give (one line)."""


def cuda_missing_message(what: str = "device = 'cuda'") -> str:
    return (f"{what} asked for, but torch sees no CUDA device on this machine "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'none'}): use device cpu, "
            "or run it where a GPU is visible")


def run_device(name: str | torch.device) -> torch.device:
    """The torch device a run trains on; DeviceError (one line) when it asks for CUDA and torch
    sees none here. Any other device torch knows is passed through (tests use 'meta')."""
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as e:
        raise DeviceError(f"device {name!r} is not a torch device ({e}): use cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(cuda_missing_message(f"device {str(name)!r}"))
    return dev


def make_generators(seed: int, device: torch.device) -> tuple[torch.Generator, torch.Generator]:
    """(index generator on the CPU, sampling generator on `device`), both seeded with `seed`.
    On the CPU they are the same object (see the module docstring)."""
    index = torch.Generator(device="cpu").manual_seed(int(seed))
    if device.type == "cpu":
        return index, index
    return index, torch.Generator(device=device).manual_seed(int(seed))


@contextlib.contextmanager
def built_on_cpu() -> Iterator[None]:
    """Networks made inside are initialised on the CPU (then moved by the caller)."""
    with torch.device("cpu"):
        yield


def cpu_tree(obj: Any) -> Any:
    """`obj` (nested dicts / lists / tuples of tensors and plain values) with every tensor
    detached and copied to the CPU: what goes into a file."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: cpu_tree(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(cpu_tree(v) for v in obj)
    return obj

