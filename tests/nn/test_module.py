"""The module system: registration, traversal, modes, state_dict, repr, hooks, containers."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

import filterbank as fb
from filterbank import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.act = nn.ReLU()
        self.scale = nn.Parameter(np.ones(4, np.float32))
        self.register_buffer("count", fb.zeros(1))
        self.register_buffer("cache", fb.zeros(2), persistent=False)

    def forward(self, x):
        return self.act(self.fc(x)) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.head = nn.Sequential(nn.Linear(4, 2), nn.Sigmoid())

    def forward(self, x):
        return self.head(self.block(x))


def test_registration_and_names():
    net = Net()
    # PyTorch's order: a module's own parameters before its children's
    assert [n for n, _ in net.named_parameters()] == [
        "block.scale", "block.fc.weight", "block.fc.bias", "head.0.weight", "head.0.bias"]
    assert [n for n, _ in net.named_buffers()] == ["block.count", "block.cache"]
    assert [n for n, _ in net.named_children()] == ["block", "head"]
    assert [n for n, _ in net.named_modules()] == [
        "", "block", "block.fc", "block.act", "head", "head.0", "head.1"]
    assert [n for n, _ in net.block.named_parameters(recurse=False)] == ["scale"]
    assert net.num_parameters() == 12 + 4 + 4 + 10
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())


def test_shared_parameters_are_listed_once():
    fc = nn.Linear(2, 2)
    seq = nn.Sequential(fc, nn.ReLU(), fc)
    assert len(list(seq.parameters())) == 2
    assert len(list(seq.modules())) == 3  # seq, fc (once), relu


def test_train_eval_propagate():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net and not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.head.train(False)
    assert net.training and not net.head[0].training


def test_zero_grad_and_requires_grad():
    net = Net()
    net(fb.randn(5, 3)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(np.all(p.grad.numpy() == 0) for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.block.requires_grad_(False)
    assert net.num_parameters(trainable_only=True) == 10
    net(fb.randn(5, 3)).sum().backward()
    assert net.block.fc.weight.grad is None and net.head[0].weight.grad is not None


def test_state_dict_contents_are_copies_and_skip_non_persistent():
    net = Net()
    sd = net.state_dict()
    assert list(sd) == ["block.scale", "block.count", "block.fc.weight", "block.fc.bias",
                        "head.0.weight", "head.0.bias"]
    sd["block.scale"][...] = 7
    assert np.all(net.block.scale.detach().numpy() == 1)


def test_load_state_dict_round_trip():
    a, b = Net(), Net()
    b.load_state_dict(a.state_dict())
    x = fb.randn(4, 3)
    np.testing.assert_array_equal(a(x).detach().numpy(), b(x).detach().numpy())
    # tensors are accepted as values too, and dtypes follow the model
    b.load_state_dict({k: fb.Tensor(v.astype(np.float64), dtype=np.float64)
                       for k, v in a.state_dict().items()})
    assert b.block.fc.weight.dtype == np.float32


def test_load_state_dict_strict_errors_list_everything_and_change_nothing():
    net = Net()
    before = net.state_dict()
    bad = net.state_dict()
    del bad["block.scale"], bad["head.0.bias"]
    bad["block.extra"] = np.zeros(3, np.float32)
    bad["head.0.weight"] = np.zeros((3, 4), np.float32)
    bad["block.fc.weight"] = np.full((4, 3), 5.0, np.float32)  # valid, must not be applied
    with pytest.raises(nn.StateDictError) as info:
        net.load_state_dict(bad)
    msg = str(info.value)
    for part in ("load_state_dict(Net)", "missing keys: block.scale, head.0.bias",
                 "unexpected keys: block.extra",
                 "head.0.weight: expected (2, 4), got (3, 4)"):
        assert part in msg
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    assert isinstance(info.value, ValueError)


def test_load_state_dict_non_strict():
    net = Net()
    sd = net.state_dict()
    del sd["block.scale"]
    sd["extra"] = np.zeros(1)
    sd["block.fc.bias"] = np.full(4, 3.0)
    res = net.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["block.scale"] and res.unexpected_keys == ["extra"]
    assert np.all(net.block.fc.bias.detach().numpy() == 3)
    sd["head.0.bias"] = np.zeros(5)
    with pytest.raises(nn.StateDictError, match="shape mismatches"):
        net.load_state_dict(sd, strict=False)


def test_state_dict_and_repr_match_torch():
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU(), nn.Dropout(0.25),
                         nn.Sequential(nn.Linear(8, 3), nn.LogSoftmax(dim=1)))
    theirs = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 8), torch.nn.ReLU(),
                                 torch.nn.Dropout(0.25),
                                 torch.nn.Sequential(torch.nn.Linear(8, 3),
                                                     torch.nn.LogSoftmax(dim=1)))
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    # a PyTorch state_dict loads one to one and gives the same outputs
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    ours.eval()
    theirs.eval()
    x = np.random.default_rng(0).standard_normal((5, 3, 2, 2)).astype(np.float32)
    np.testing.assert_allclose(ours(fb.tensor(x)).detach().numpy(),
                               theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-5,
                               atol=1e-6)


def test_assignment_rules():
    fc = nn.Linear(2, 3)
    with pytest.raises(TypeError, match="Linear: cannot assign Tensor as parameter 'weight' "
                                        r"\(Parameter or None expected\)"):
        fc.weight = fb.zeros(3, 2)
    assert [n for n, _ in fc.named_parameters()] == ["weight", "bias"]
    fc.bias = None
    assert list(fc.state_dict()) == ["weight"] and fc.bias is None
    fc.bias = nn.Parameter(np.zeros(3, np.float32))
    assert list(fc.state_dict()) == ["weight", "bias"]
    seq = nn.Sequential(nn.ReLU())
    with pytest.raises(TypeError, match="cannot assign int as child module '0'"):
        setattr(seq, "0", 3)
    with pytest.raises(TypeError, match="cannot add str as child module 'x'"):
        seq.add_module("x", "relu")
    with pytest.raises(KeyError, match="without '.'"):
        seq.add_module("a.b", nn.ReLU())
    with pytest.raises(TypeError, match="cannot register Tensor as parameter"):
        fc.register_parameter("w2", fb.zeros(2))
    with pytest.raises(KeyError, match="already exists"):
        fc.register_buffer("weight", fb.zeros(1))
    del fc.bias
    assert list(fc.state_dict()) == ["weight"]


def test_forgetting_super_init_is_a_clear_error():
    class Bad(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(1, 1)

    with pytest.raises(RuntimeError, match=r"Bad: call super\(\).__init__\(\) before"):
        Bad()
    with pytest.raises(NotImplementedError, match="Module has no forward"):
        nn.Module()(fb.zeros(1))


def test_buffers():
    b = Block()
    assert b.count is b._buffers["count"]
    b.count = fb.ones(1)  # reassigning a buffer keeps it registered
    assert b.state_dict()["count"].tolist() == [1.0]
    assert "cache" not in b.state_dict() and len(list(b.buffers())) == 2


def test_forward_hooks_and_apply():
    net = Net()
    seen = []
    h = net.block.fc.register_forward_hook(lambda m, args, out: seen.append(
        (type(m).__name__, args[0].shape, out.shape)))
    net(fb.randn(2, 3))
    assert seen == [("Linear", (2, 3), (2, 4))]
    h.remove()
    net(fb.randn(2, 3))
    assert len(seen) == 1
    h2 = net.head.register_forward_hook(lambda m, args, out: out * 0)  # replaces the output
    assert np.all(net(fb.randn(2, 3)).detach().numpy() == 0)
    h2.remove()
    order = []
    net.apply(lambda m: order.append(type(m).__name__))
    assert order == ["Linear", "ReLU", "Block", "Linear", "Sigmoid", "Sequential", "Net"]


def test_to_double_and_back():
    net = Net().double()
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert net.block.count.dtype == np.float64
    y = net(fb.Tensor(np.ones((2, 3)), dtype=np.float64))
    assert y.dtype == np.float64
    assert all(p.dtype == np.float32 for p in net.float().parameters())


def test_sequential():
    a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    seq = nn.Sequential(a, b, c)
    assert len(seq) == 3 and seq[0] is a and seq[-1] is c and list(seq) == [a, b, c]
    sub = seq[1:]
    assert isinstance(sub, nn.Sequential) and list(sub) == [b, c]
    assert seq(fb.ones(4, 2)).shape == (4, 1)
    named = nn.Sequential(OrderedDict([("fc", a), ("act", b)]))
    assert named["fc"] is named.fc is a and [n for n, _ in named.named_children()] == ["fc", "act"]
    seq.append(nn.Sigmoid())
    assert len(seq) == 4 and "3.weight" not in seq.state_dict()
    with pytest.raises(TypeError, match="Sequential: expected a Module, got function"):
        nn.Sequential(lambda x: x)


def test_module_list_and_dict():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    layers.append(nn.ReLU()).extend([nn.Tanh()])
    assert len(layers) == 5 and isinstance(layers[-1], nn.Tanh)
    assert len(list(layers.parameters())) == 6
    assert list(layers.state_dict())[:2] == ["0.weight", "0.bias"]
    assert isinstance(layers[1:3], nn.ModuleList) and len(layers[1:3]) == 2
    d = nn.ModuleDict({"enc": nn.Linear(2, 3), "act": nn.ReLU()})
    d["dec"] = nn.Linear(3, 2)
    assert "dec" in d and list(d) == ["enc", "act", "dec"] and len(d) == 3
    assert [k for k, _ in d.items()] == list(d.keys())
    assert list(d.state_dict()) == ["enc.weight", "enc.bias", "dec.weight", "dec.bias"]
    with pytest.raises(TypeError, match="ModuleList: expected a Module, got int"):
        layers.append(1)
    with pytest.raises(TypeError, match="ModuleDict: expected a Module, got str"):
        d["x"] = "y"
    torch = pytest.importorskip("torch")
    assert repr(nn.ModuleList([nn.ReLU()])) == repr(torch.nn.ModuleList([torch.nn.ReLU()]))


# ------------------------------------------------ devices, dtypes, get_submodule (issue 10)
class _Stats(nn.Module):
    """A float and an integer buffer (as BatchNorm's running_mean and num_batches_tracked)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("running_mean", fb.zeros(2))
        self.register_buffer("num_batches_tracked", fb.tensor(0))

    def forward(self, x):
        return x


def _net():
    return nn.Sequential(nn.Conv2d(1, 2, 3), _Stats(), nn.ReLU(),
                         nn.Sequential(nn.Flatten(), nn.Linear(8, 3)))


def test_to_cpu_forms_return_self_and_change_nothing():
    m = _net()
    before = {k: v.copy() for k, v in m.state_dict().items()}
    ids = [id(p) for p in m.parameters()]
    for call in (lambda: m.to("cpu"), lambda: m.to(fb.device("cpu")), lambda: m.cpu(),
                 lambda: m.to(device="cpu"), lambda: m.to("cpu:0")):
        assert call() is m
    assert [id(p) for p in m.parameters()] == ids
    for k, v in m.state_dict().items():
        assert v.dtype == before[k].dtype and np.array_equal(v, before[k])


def test_to_dtype_casts_floating_parameters_buffers_and_grads_in_place():
    m = _net()
    m(fb.randn(2, 1, 4, 4)).sum().backward()
    w = m[0].weight
    assert m.to(fb.float64) is m and m[0].weight is w
    assert all(p.dtype == np.float64 and p.grad.dtype == np.float64 for p in m.parameters())
    assert m[1].running_mean.dtype == np.float64
    assert m[1].num_batches_tracked.dtype.kind == "i"  # integer buffers are left alone
    m.to("cpu", fb.float32)
    assert all(p.dtype == np.float32 for p in m.parameters())
    assert m.half()[0].weight.dtype == np.float16 and m.float()[0].weight.dtype == np.float32
    assert m.to(dtype=fb.float64)[0].bias.dtype == np.float64
    m.to(fb.zeros(1, dtype=fb.float32))  # a tensor: its dtype (and device)
    assert m[0].weight.dtype == np.float32


def test_type_casts_every_parameter_and_buffer():
    m = _net()
    assert m.type(fb.float64) is m
    assert m[0].weight.dtype == np.float64 and m[1].num_batches_tracked.dtype == np.float64


@pytest.mark.parametrize("call, exc, match", [
    (lambda m: m.to("cuda"), ValueError,
     r"device 'cuda' is not available: CuPy is not installed"),
    (lambda m: m.cuda(), ValueError, r"device 'cuda:0' is not available"),
    (lambda m: m.to(fb.int64), TypeError,
     r"Linear.to: only floating-point dtypes are accepted, got int64"),
    (lambda m: m.to("cpu", "cpu"), TypeError, r"Linear.to: device given twice"),
    (lambda m: m.type("cpu"), TypeError, r"Linear.type: expected a dtype, got 'cpu'"),
])
def test_to_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call(nn.Linear(2, 2))


def test_to_matches_torch_on_the_same_calls():
    torch = pytest.importorskip("torch")
    m, tm = nn.Linear(3, 2), torch.nn.Linear(3, 2)
    for args in (("cpu",), (torch.float64,), ("cpu", torch.float32)):
        fb_args = tuple(getattr(fb, str(a).split(".")[1]) if isinstance(a, torch.dtype) else a
                        for a in args)
        assert m.to(*fb_args) is m and tm.to(*args) is tm
        assert str(m.weight.dtype) == str(tm.weight.dtype).split(".")[1]
    with pytest.raises(TypeError, match="floating"):
        tm.to(torch.int64)  # PyTorch refuses integer dtypes too


def test_get_submodule_paths_and_torch_errors():
    m = _net()
    assert m.get_submodule("") is m
    assert m.get_submodule("0") is m[0]
    assert m.get_submodule("3.1") is m[3][1]
    with pytest.raises(AttributeError, match=r"^Sequential has no attribute `7`$"):
        m.get_submodule("7")
    with pytest.raises(AttributeError, match=r"^Linear has no attribute `w`$"):
        m.get_submodule("3.1.w")
    with pytest.raises(AttributeError, match=r"^`weight` is not an nn.Module$"):
        m.get_submodule("0.weight")
    with pytest.raises(TypeError, match=r"get_submodule: expected a dotted path string"):
        m.get_submodule(0)


def test_get_submodule_error_messages_equal_torch():
    torch = pytest.importorskip("torch")
    tm = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Sequential(torch.nn.ReLU()))
    m = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU()))
    for path in ("5", "1.x", "0.weight", "0.bias.x"):
        with pytest.raises(AttributeError) as want:
            tm.get_submodule(path)
        with pytest.raises(AttributeError) as got:
            m.get_submodule(path)
        assert str(got.value) == str(want.value), path
