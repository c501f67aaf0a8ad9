"""Random indices for minibatches and network-init seeds, drawn with an index generator.

The index generator of a training job stays on the CPU (engine.train.device): the indices are
drawn on the generator's device, so a seed gives the same index stream on every device, and are
then moved to the device of the data they index. Without a generator they are drawn on the
data's device directly.
"""
from __future__ import annotations

import torch

__all__ = ["randperm", "randint", "random_seed"]


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
