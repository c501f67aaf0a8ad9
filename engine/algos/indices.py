"""Random indices for minibatches (`minibatch_indices`: one epoch's split of a batch) and
network-init seeds, drawn with an index generator.

The index generator of a training job stays on the CPU (engine.train.device): the indices are
drawn on the generator's device, so a seed gives the same index stream on every device, and are
then moved to the device of the data they index. Without a generator they are drawn on the
data's device directly.
"""
from __future__ import annotations

import torch

__all__ = ["randperm", "randint", "random_seed", "minibatch_indices"]


def _draw_device(generator: torch.Generator | None, device: torch.device | str) -> torch.device:
    return generator.device if generator is not None else torch.device(device)


def randperm(n: int, generator: torch.Generator | None, device: torch.device | str) -> torch.Tensor:
    """A random permutation of range(n) (int64) on `device`."""
    return torch.randperm(n, generator=generator, device=_draw_device(generator, device)).to(device)


def randint(high: int, size: int, generator: torch.Generator | None, device: torch.device | str) -> torch.Tensor:
    """`size` uniform draws from range(high) (int64) on `device`."""
    return torch.randint(0, high, (size,), generator=generator, device=_draw_device(generator, device)).to(device)


def random_seed(generator: torch.Generator) -> int:
    """A seed in [0, 2^62) drawn from `generator` (for seeding network init from it)."""
    return int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())


def minibatch_indices(n: int, num_minibatches: int, generator: torch.Generator | None = None,
                      device: torch.device | str | None = None) -> list[torch.Tensor]:
    """A random permutation of range(n) split into `num_minibatches` near-equal parts (empty parts
    dropped, so a batch smaller than num_minibatches gives minibatches of size 1)."""
    perm = randperm(n, generator, "cpu" if device is None else device)
    return [p for p in torch.tensor_split(perm, max(1, int(num_minibatches))) if p.numel() > 0]
