"""nn.utils.create_feature_extractor: intermediate activations by layer name."""

from __future__ import annotations

import numpy as np
import pytest
from harness import assert_close

import filterbank as fb
from filterbank import nn
from filterbank.nn.utils import FeatureExtractor, create_feature_extractor, find_module


class Counting(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x


def _net():
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(),
                         nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU()), Counting(),
                         nn.Flatten(), nn.Linear(2 * 4 * 4, 3))


def _x(seed=0):
    return fb.Tensor(np.random.default_rng(seed).standard_normal((2, 1, 6, 6)).astype(np.float32))


def test_returns_the_layers_outputs_in_order():
    net = _net()
    x = _x()
    fe = create_feature_extractor(net, ["2.0", "0", ""])
    assert isinstance(fe, FeatureExtractor) and isinstance(fe, nn.Module)
    feats = fe(x)
    assert list(feats) == ["2.0", "0", ""]
    conv0 = net[0](x)
    assert_close(feats["0"], conv0.detach().numpy())
    assert_close(feats["2.0"], net[2][0](net[1](conv0)).detach().numpy())
    assert_close(feats[""], net(x).detach().numpy())
    assert not any(m._forward_hooks for m in net.modules())  # the model is left as it was


def test_dict_keys_and_early_stop():
    net = _net()
    fe = create_feature_extractor(net, {"1": "relu", "2.1": "block"})
    feats = fe(_x())
    assert list(feats) == ["relu", "block"]
    assert feats["block"].shape == (2, 2, 4, 4)
    assert net[3].calls == 0  # the layers after the last requested one did not run
    create_feature_extractor(net, ["3"])(_x())
    assert net[3].calls == 1


def test_activations_keep_their_graph_and_state_dict_is_the_models():
    net = _net()
    fe = create_feature_extractor(net, ["2.0"])
    fe(_x())["2.0"].sum().backward()
    assert net[0].weight.grad is not None and net[5].weight.grad is None
    assert list(fe.state_dict()) == list(net.state_dict())
    other = _net()
    fe.load_state_dict(other.state_dict())
    assert_close(net[0].weight.detach().numpy(), other[0].weight.detach().numpy())
    assert fe.eval() is fe and not net.training
    assert "return_nodes={'2.0': '2.0'}" in repr(fe)


def test_unknown_names_are_listed():
    net = _net()
    with pytest.raises(ValueError, match=r"create_feature_extractor: Sequential has no layer "
                                         r"'2\.5'; did you mean '2\.1', '2\.0', '5'\? valid "
                                         r"names are: '0', '1', '2', '2\.0', '2\.1', '3', "
                                         r"'4', '5'$"):
        create_feature_extractor(net, ["0", "2.5"])
    deep = nn.Sequential(*[nn.ReLU() for _ in range(40)])
    with pytest.raises(ValueError, match=r"'5', \.\.\. \(28 more\) \.\.\., '34'") as e:
        create_feature_extractor(deep, ["fc"])
    assert "'17'" not in str(e.value)


@pytest.mark.parametrize("nodes, exc, match", [
    ([], ValueError, "return_nodes is empty"),
    (3, TypeError, "expected return_nodes to be a list of layer names or a dict name -> key, "
                   "got int"),
    ([0], TypeError, r"expected a layer name \(str\) or a Module, got int"),
    ({"0": 1}, TypeError, "output keys must be strings"),
    ({"0": "a", "1": "a"}, ValueError, "output keys must be unique"),
])
def test_bad_return_nodes(nodes, exc, match):
    with pytest.raises(exc, match="create_feature_extractor: " + match):
        create_feature_extractor(_net(), nodes)


def test_a_layer_called_twice_gives_its_first_output():
    relu = nn.ReLU()
    net = nn.Sequential(relu, nn.Linear(2, 2), relu, nn.Linear(2, 1))  # relu is named "0"
    x = fb.tensor([[-1.0, 2.0]])
    feats = create_feature_extractor(net, ["0", "3"])(x)
    assert feats["0"].tolist() == [[0.0, 2.0]] and feats["3"].shape == (1, 1)


def test_a_layer_the_forward_never_calls():
    class Skip(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.unused = nn.ReLU(), nn.ReLU()

        def forward(self, x):
            return self.used(x)

    with pytest.raises(RuntimeError, match=r"the layers \['unused'\] were not called"):
        create_feature_extractor(Skip(), ["unused"])(fb.zeros(2))


def test_find_module_by_object_and_errors():
    net = _net()
    assert find_module(net, net[2][1], "f") == ("2.1", net[2][1])
    with pytest.raises(ValueError, match="f: the module ReLU is not a sub-module"):
        find_module(net, nn.ReLU(), "f")
    with pytest.raises(TypeError, match="f: expected model to be an nn.Module, got list"):
        find_module([], "0", "f")


def test_matches_torchvision_style_use_with_torch_weights():
    torch = pytest.importorskip("torch")
    net = _net()
    tn = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.ReLU(),
                             torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.ReLU()))
    tn.load_state_dict({k: torch.from_numpy(v) for k, v in net.state_dict().items()
                        if k.startswith(("0.", "2."))})
    x = _x(1)
    got = create_feature_extractor(net, ["2.1"])(x)["2.1"]
    assert_close(got, tn(torch.from_numpy(x.numpy())))
