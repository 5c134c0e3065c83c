"""Round trip of training: a ResNet-18 exported to ONNX and imported back trains like the
original (issue 11): the same loss, the same gradient for every parameter, the same weights
after an optimizer step, and the same loss again after it."""

from __future__ import annotations

import numpy as np
import pytest

import filterbank as fb
from filterbank import nn, optim
from filterbank.models import get_model


def test_an_imported_resnet18_trains_one_step_like_the_original(tmp_path):
    pytest.importorskip("onnx")
    import filterbank.onnx as fonnx

    fb.manual_seed(0)
    original = get_model("resnet18", num_classes=10, in_channels=3, stem="cifar")
    path = tmp_path / "resnet18.onnx"
    fonnx.export(original, fb.zeros(2, 3, 32, 32), path)
    imported = fonnx.load(path)
    names = imported.onnx_names  # imported parameter name -> ONNX initializer name
    theirs = dict(original.named_parameters())
    ours = dict(imported.named_parameters())
    assert len(ours) == len(theirs) == 62
    assert {names[k] for k in ours} == set(theirs)  # the initializers keep the model's names

    rng = np.random.default_rng(0)
    x = fb.tensor(rng.normal(size=(4, 3, 32, 32)).astype(np.float32))
    y = fb.tensor(rng.integers(0, 10, 4))
    loss_fn = nn.CrossEntropyLoss()
    opts = {}
    losses = {}
    for key, model in (("original", original), ("imported", imported)):
        model.train()  # BatchNorm on batch statistics, in both
        opts[key] = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        opts[key].zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        losses[key] = loss.item()
    assert losses["imported"] == pytest.approx(losses["original"], rel=1e-5)
    for name, p in ours.items():
        q = theirs[names[name]]
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-4, atol=1e-5,
                                   err_msg=names[name])
    for opt in opts.values():
        opt.step()
    for name, p in ours.items():
        np.testing.assert_allclose(p.detach().numpy(), theirs[names[name]].detach().numpy(),
                                   rtol=1e-4, atol=1e-6, err_msg=names[name])
    with fb.no_grad():
        again = [loss_fn(m(x), y).item() for m in (original, imported)]
    assert again[1] == pytest.approx(again[0], rel=1e-4)
    assert again[0] != pytest.approx(losses["original"], rel=1e-3)  # the step changed it
