"""engine.kernels: the MLP computes what the plain modules compute, forward and backward, on its
default path (FastTanh) and on the opt-in oneDNN path wherever this torch build has the op (the
oneDNN tests skip where it does not)."""
import copy

import pytest
import torch
from torch import nn

from engine import kernels
from engine.kernels import MLP, FastTanh
from engine.nets import Actor, Critic, QNetwork, mlp


def plain_copy(net: MLP) -> nn.Sequential:
    """The same modules as a plain nn.Sequential with torch's own Tanh."""
    mods = [nn.Tanh() if isinstance(m, nn.Tanh) else copy.deepcopy(m) for m in net]
    return nn.Sequential(*mods)


@pytest.fixture(params=["default", "onednn"])
def path(request, monkeypatch):
    """Run a test on the default path and on the oneDNN path (skipped where the op is missing)."""
    monkeypatch.setattr(kernels, "_STATE", {})
    if request.param == "onednn":
        if not kernels.onednn_supported():
            pytest.skip("this torch build has no working torch.ops.mkldnn._linear_pointwise")
        monkeypatch.setenv(kernels.ONEDNN_ENV, "1")
        assert kernels.onednn_available()
    else:
        monkeypatch.delenv(kernels.ONEDNN_ENV, raising=False)
        assert not kernels.onednn_available()
    return request.param


def test_onednn_is_opt_in(monkeypatch):
    for value, want in ((None, False), ("0", False), ("off", False), ("yes", None), ("1", None)):
        monkeypatch.setattr(kernels, "_STATE", {})
        if value is None:
            monkeypatch.delenv(kernels.ONEDNN_ENV, raising=False)
        else:
            monkeypatch.setenv(kernels.ONEDNN_ENV, value)
        assert kernels.onednn_available() is (kernels.onednn_supported() if want is None else want), value


def test_a_torch_without_the_onednn_op_falls_back(monkeypatch):
    """PLAYGROUND_ONEDNN=1 on a torch whose mkldnn ops are gone: the plain path, the same numbers."""
    torch.manual_seed(4)
    net = mlp(21, 4, 3, 64)
    x = torch.randn(40, 21)
    with torch.no_grad():
        ref = plain_copy(net)(x)

    def missing(*a, **k):
        raise AttributeError("'_OpNamespace' 'mkldnn' object has no attribute '_linear_pointwise'")

    monkeypatch.setattr(kernels, "_STATE", {})
    monkeypatch.setattr(kernels, "_linear_pointwise", missing)
    monkeypatch.setenv(kernels.ONEDNN_ENV, "1")
    assert not kernels.onednn_supported() and not kernels.onednn_available()
    xa = x.clone().requires_grad_()
    out = net(xa)
    out.square().sum().backward()
    assert torch.allclose(out.detach(), ref, atol=1e-5) and xa.grad is not None


def test_fast_tanh_matches_torch_tanh_forward_and_backward():
    x = (torch.randn(300, 64) * 4).requires_grad_()
    y = FastTanh()(x)
    g = torch.randn_like(y)
    y.backward(g)
    x2 = x.detach().clone().requires_grad_()
    torch.tanh(x2).backward(g)
    assert (y - torch.tanh(x2)).abs().max() < 3e-7
    assert torch.allclose(x.grad, x2.grad, atol=3e-6)
    assert torch.autograd.gradcheck(FastTanh(), (torch.randn(4, 3, dtype=torch.double, requires_grad=True),))


@pytest.mark.parametrize("rows", [1, 7, 1000, 5000])
def test_fused_mlp_matches_plain_modules(rows, path):
    torch.manual_seed(0)
    net = mlp(21, 4, 3, 256, out_std=0.5)
    ref = plain_copy(net)
    x = torch.randn(rows, 21)
    with torch.no_grad():
        assert torch.allclose(net(x), ref(x), rtol=1e-4, atol=1e-5)
    # training: the same gradients for every parameter and for the input
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    (net(xa).square().sum()).backward()
    (ref(xb).square().sum()).backward()
    for p, q in zip(net.parameters(), ref.parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-3, atol=1e-5 * q.grad.abs().max().item())
    assert torch.allclose(xa.grad, xb.grad, rtol=1e-3, atol=1e-6)


def test_fused_mlp_gradcheck_shapes_and_frozen_weights(path):
    torch.manual_seed(1)
    net = mlp(5, 2, 2, 8)
    for p in net.parameters():
        p.requires_grad_(False)
    x = torch.randn(3, 5, requires_grad=True)
    net(x).sum().backward()                       # only the input needs a gradient
    ref = plain_copy(net)
    x2 = x.detach().clone().requires_grad_()
    ref(x2).sum().backward()
    assert torch.allclose(x.grad, x2.grad, atol=1e-5)
    assert net(torch.randn(5)).shape == (2,)      # 1-D and 3-D inputs keep their leading shape
    assert net(torch.randn(2, 3, 5)).shape == (2, 3, 2)


def test_fallbacks_give_the_same_function(monkeypatch, path):
    torch.manual_seed(2)
    net = mlp(21, 1, 3, 64)
    x = torch.randn(50, 21)
    with torch.no_grad():
        fast = net(x)
        assert torch.allclose(net.double()(x.double()).float(), fast, atol=1e-5)  # float64: plain modules
    monkeypatch.setitem(kernels._STATE, "onednn", False)
    net = net.float()
    with torch.no_grad():
        assert torch.allclose(net(x), fast, atol=1e-5)


def test_state_dicts_are_those_of_plain_sequentials():
    a = Actor(21, 4)
    keys = set(a.state_dict())
    assert {"mean.0.weight", "mean.2.weight", "mean.4.weight", "mean.6.bias", "logstd"} <= keys
    plain = plain_copy(a.mean)
    plain.load_state_dict(a.mean.state_dict())    # and back: a plain Sequential's dict loads into MLP
    a.mean.load_state_dict(plain.state_dict())
    assert isinstance(Critic(21).net, MLP) and isinstance(QNetwork(21, 4).net, MLP)


def test_awr_style_training_descends_with_the_fused_path(path):
    torch.manual_seed(3)
    actor = Actor(21, 4)
    opt = torch.optim.Adam(actor.parameters(), lr=1e-3)
    obs, act = torch.randn(512, 21), torch.randn(512, 4) * 0.3
    first = None
    for _ in range(60):
        loss = -actor.log_prob(obs, act).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < first - 0.5
