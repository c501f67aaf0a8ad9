"""Fast CPU paths for the 3x256 Tanh MLPs every policy and critic here uses.

- `FastTanh` (always on, public torch ops only): `torch.tanh` is ~4x slower than
  2*sigmoid(2x) - 1 computed in place; a 4,096-row forward gains ~1.2x from it alone.
- The oneDNN fused Linear+Tanh (OPT-IN: `PLAYGROUND_ONEDNN=1`): `MLP` then runs each Linear+Tanh
  pair as one call of torch's PRIVATE op `torch.ops.mkldnn._linear_pointwise` (the one Inductor
  uses), with an autograd Function for training (backward: tanh's derivative from the saved
  output, then the input and weight gradients as two more oneDNN products). On AMD CPUs MKL's
  fp32 products run below the chip's AVX-512 speed and oneDNN's do not, but measured end to end
  (the headline run at one thread) the gain was within noise, and a private op may change or
  vanish in any torch release (the macOS arm64 wheel has none), so it is off by default.
  `python -m engine.bench.onednn` measures its gain over the default path in one run.

`MLP` is an `nn.Sequential` (same modules, same state_dict keys, so every checkpoint loads
unchanged). Without the opt-in, or where the op is missing (no oneDNN in the torch build),
for non-CPU tensors and non-float32 data, it runs its modules as they are (Linear, FastTanh).
The first use of the oneDNN path checks its result against `F.linear` on a small sample and
falls back (for the whole process) if they disagree.

Results are the same function up to float rounding (products summed in another order: relative
differences ~1e-6), deterministic, and independent of the torch thread count
(tests/test_kernels.py, tests/test_runtime.py).
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn
from torch.nn import functional as F

from . import settings

__all__ = ["FastTanh", "MLP", "ONEDNN_ENV", "onednn_available", "onednn_supported", "plain_path"]

ONEDNN_ENV = "PLAYGROUND_ONEDNN"  # "1": use the private oneDNN op (opt-in)

_STATE: dict[str, bool] = {}


def _tanh_via_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return x.mul(2.0).sigmoid_().mul_(2.0).sub_(1.0)


class _TanhFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        y = _tanh_via_sigmoid(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (y,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad, y)


class FastTanh(nn.Tanh):
    """tanh(x) as 2*sigmoid(2x) - 1 (within 2e-7 of torch.tanh); a drop-in for `nn.Tanh`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            return _TanhFunction.apply(x)
        return _tanh_via_sigmoid(x)


def _linear_pointwise(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, act: str) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, w, b, act, [], "")


def onednn_supported() -> bool:
    """Whether this torch build has the oneDNN op and it computes Linear+Tanh correctly here
    (checked once per process, whatever PLAYGROUND_ONEDNN says)."""
    ok = _STATE.get("supported")
    if ok is None:
        ok = False
        if torch.backends.mkldnn.is_available():
            try:
                g = torch.Generator().manual_seed(0)
                x, w, b = (torch.randn(37, 19, generator=g), torch.randn(23, 19, generator=g),
                           torch.randn(23, generator=g))
                with torch.no_grad():
                    ref = torch.tanh(F.linear(x, w, b))
                    got = _linear_pointwise(x, w, b, "tanh")
                ok = got.shape == ref.shape and bool(torch.allclose(got, ref, rtol=1e-4, atol=1e-5))
            except (AttributeError, RuntimeError, NotImplementedError):
                ok = False
        _STATE["supported"] = ok
    return ok


def onednn_available() -> bool:
    """Whether the fused oneDNN path is used in this process: asked for (`PLAYGROUND_ONEDNN=1`,
    read once) and supported by this torch build."""
    ok = _STATE.get("onednn")
    if ok is None:
        ok = bool(settings.get(ONEDNN_ENV)) and onednn_supported()
        _STATE["onednn"] = ok
    return ok


@contextlib.contextmanager
def plain_path() -> Iterator[None]:
    """Inside, `MLP` runs its plain modules on the CPU too: the path CUDA tensors always take
    (engine.bench.devices compares the two on one batch)."""
    saved = _STATE.get("onednn")
    _STATE["onednn"] = False
    try:
        yield
    finally:
        if saved is None:
            _STATE.pop("onednn", None)
        else:
            _STATE["onednn"] = saved


class _LinearFunction(torch.autograd.Function):
    """y = act(x W^T + b) through oneDNN; act is 'tanh' or 'none'."""

    @staticmethod
    def forward(ctx, x, w, b, act):  # type: ignore[override]
        y = _linear_pointwise(x, w, b, act)
        ctx.act = act
        ctx.save_for_backward(x, w, y)
        return y

    @staticmethod
    def backward(ctx, gy):  # type: ignore[override]
        x, w, y = ctx.saved_tensors
        gz = torch.ops.aten.tanh_backward(gy, y) if ctx.act == "tanh" else gy.contiguous()
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        gx = _linear_pointwise(gz, w.t().contiguous(), None, "none") if need_x else None
        gw = _linear_pointwise(gz.t(), x.t(), None, "none") if need_w else None  # gz^T x, strided views
        gb = gz.sum(0) if need_b else None
        return gx, gw, gb, None


def _fused_linear(x: torch.Tensor, layer: nn.Linear, act: str) -> torch.Tensor:
    w, b = layer.weight, layer.bias
    if torch.is_grad_enabled() and (x.requires_grad or w.requires_grad or (b is not None and b.requires_grad)):
        return _LinearFunction.apply(x, w, b, act)
    return _linear_pointwise(x, w, b, act)


class MLP(nn.Sequential):
    """`nn.Sequential` of Linear / Tanh modules whose forward fuses each Linear+Tanh pair on CPU."""

    def _plan(self) -> list[tuple[nn.Module, str | None]]:
        """(module, 'tanh' | 'none' | None): Linear+Tanh pairs fused, other Linears alone, the rest as is."""
        mods, plan, i = list(self), [], 0
        while i < len(mods):
            m = mods[i]
            if type(m) is nn.Linear:
                fuse = i + 1 < len(mods) and isinstance(mods[i + 1], nn.Tanh)
                plan.append((m, "tanh" if fuse else "none"))
                i += 2 if fuse else 1
            else:
                plan.append((m, None))
                i += 1
        return plan

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if x.device.type != "cpu" or x.dtype != torch.float32 or x.dim() < 1 or not onednn_available():
            return super().forward(x)
        lead = x.shape[:-1]
        h = x.reshape(-1, x.shape[-1]).contiguous()
        for module, act in self._plan():
            if act is None:
                h = module(h)
            else:
                if module.weight.dtype != torch.float32 or module.weight.device.type != "cpu":
                    return super().forward(x)
                h = _fused_linear(h, module, act)
        return h.reshape(*lead, h.shape[-1])
