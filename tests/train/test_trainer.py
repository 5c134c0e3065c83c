"""Trainer: exact resume, dtype/memory stability over 100 steps, NaN guard rails, anomaly mode,
clipping, seeding, evaluate/predict, progress bar, History."""

from __future__ import annotations

import gc
import json
import math

import numpy as np
import pytest

import filterbank as fb
from filterbank import nn, optim
from filterbank.autograd.function import Function
from filterbank.data import DataLoader, TensorDataset
from filterbank.data.transforms import RandomHorizontalFlip
from filterbank.train import (
    Callback,
    History,
    ModelCheckpoint,
    NonFiniteLossError,
    Trainer,
    load_checkpoint,
)


def images(n=96, size=6, seed=0):
    """Three classes of tiny images (mirror-symmetric, so flips keep the class): a bright top
    half, a bright bottom half, or dark."""
    g = np.random.default_rng(seed)
    y = g.integers(0, 3, n)
    x = g.random((n, 1, size, size), dtype=np.float32) * 0.3
    h = size // 2
    x[y == 0, :, :h, :] += 1
    x[y == 1, :, h:, :] += 1
    return x, y


def cnn(size, hidden):
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.3),
                         nn.Linear(4 * (size // 2) ** 2, 3))


def setup(seed=0, n=96, size=6, hidden=16, batch_size=16, prefetch=0, adam=False, arch="mlp"):
    fb.manual_seed(seed)
    x, y = images(n, size, seed=100)
    train = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True,
                       prefetch=prefetch, transform=RandomHorizontalFlip(0.5))
    val = DataLoader(TensorDataset(*images(48, size, seed=200)), batch_size=32)
    model = nn.Sequential(nn.Flatten(), nn.Linear(size * size, hidden), nn.ReLU(),
                          nn.Dropout(0.3), nn.Linear(hidden, 3)) if arch == "mlp" \
        else cnn(size, hidden)
    if adam:
        opt = optim.Adam(model.parameters(), lr=1e-2)
    else:
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.8)
    return model, opt, sched, train, val


def params(model):
    return [p.data.copy() for p in model.parameters()]


# ------------------------------------------------------------------ exact resume
@pytest.mark.parametrize("arch", ["mlp", "cnn-batchnorm"])
def test_resume_is_bit_identical(tmp_path, arch):
    model, opt, sched, train, val = setup(prefetch=1, arch=arch)
    straight = Trainer(model, opt, nn.CrossEntropyLoss(), scheduler=sched, progress=False,
                       callbacks=[ModelCheckpoint(tmp_path / "a")])
    h4 = straight.fit(train, val, epochs=4)
    want, want_state = params(model), model.state_dict()

    model, opt, sched, train, val = setup(prefetch=1, arch=arch)
    Trainer(model, opt, nn.CrossEntropyLoss(), scheduler=sched, progress=False,
            callbacks=[ModelCheckpoint(tmp_path / "b")]).fit(train, val, epochs=2)
    assert not all(np.array_equal(a, b) for a, b in zip(params(model), want))

    fb.manual_seed(12345)  # a different process state: everything must come from the file
    model, opt, sched, train, val = setup(seed=7, prefetch=1, arch=arch)
    resumed = Trainer(model, opt, nn.CrossEntropyLoss(), scheduler=sched, progress=False,
                      callbacks=[ModelCheckpoint(tmp_path / "b")])
    h = resumed.fit(train, val, epochs=4, resume=tmp_path / "b" / "last")
    for a, b in zip(params(model), want, strict=True):
        np.testing.assert_array_equal(a, b)
    for (k, a), b in zip(model.state_dict().items(), want_state.values(), strict=True):
        np.testing.assert_array_equal(a, b, err_msg=k)  # buffers too (running stats)
    assert resumed.global_step == straight.global_step == 4 * len(train)
    for key in ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        assert h[key] == h4[key], key
    assert sched.get_last_lr() == straight.scheduler.get_last_lr()
    assert load_checkpoint(tmp_path / "b" / "last")["epoch"] == 4


# ------------------------------------------------- 100 steps: dtypes and memory
class Probe(Callback):
    def __init__(self, at):
        self.at = at
        self.seen = {}

    def on_batch_end(self, trainer, step, logs):
        if step in self.at:
            import psutil

            gc.collect()
            # type() rather than isinstance(): no __class__ lookups on foreign objects
            types = [type(o) for o in gc.get_objects()]
            self.seen[step] = {
                "tensors": sum(issubclass(t, fb.Tensor) for t in types),
                "functions": sum(issubclass(t, Function) for t in types),
                "rss": psutil.Process().memory_info().rss,
            }


def test_100_steps_keep_float32_and_do_not_grow_memory():
    model, opt, sched, train, val = setup(n=400, size=16, hidden=256, batch_size=16,
                                          adam=True)
    probe = Probe({20, 60, 100})
    trainer = Trainer(model, opt, nn.CrossEntropyLoss(), progress=False, callbacks=[probe])
    trainer.fit(train, epochs=4)
    assert trainer.global_step == 100
    for p in model.parameters():
        assert p.data.dtype == np.float32 and p.grad.data.dtype == np.float32
    arrays = [v for s in opt.state.values() for v in s.values() if isinstance(v, np.ndarray)]
    assert len(arrays) == 2 * len(list(model.parameters()))
    assert all(a.dtype == np.float32 for a in arrays)
    s20, s60, s100 = probe.seen[20], probe.seen[60], probe.seen[100]
    assert s20["tensors"] == s60["tensors"] == s100["tensors"]
    assert s20["functions"] == s60["functions"] == s100["functions"]
    # one leaked step graph is ~1 MB here; 80 leaked steps would be far above this
    assert s100["rss"] - s20["rss"] < 16 * 2**20


# ------------------------------------------------------------- guard rails
class NaNAt:
    """CrossEntropy whose loss becomes NaN on one (epoch, step) of the training run."""

    def __init__(self, trainer_ref, epoch, step):
        self.ce = nn.CrossEntropyLoss()
        self.ref, self.epoch, self.step, self.calls = trainer_ref, epoch, step, {}

    def __call__(self, out, y):
        loss = self.ce(out, y)
        if fb.is_grad_enabled():
            e = self.ref["trainer"].epoch + 1
            self.calls[e] = self.calls.get(e, 0) + 1
            if (e, self.calls[e]) == (self.epoch, self.step):
                return loss * float("nan")
        return loss


class Snapshot(Callback):
    def __init__(self):
        self.after_step = {}
        self.after_epoch = {}

    def on_batch_end(self, trainer, step, logs):
        self.after_step[step] = params(trainer.model)

    def on_epoch_end(self, trainer, epoch, logs):
        self.after_epoch[epoch + 1] = params(trainer.model)


def test_nan_loss_stops_with_epoch_and_step_and_keeps_last_checkpoint(tmp_path):
    model, opt, sched, train, val = setup()
    ref = {}
    snap = Snapshot()
    trainer = Trainer(model, opt, NaNAt(ref, epoch=2, step=3), progress=False,
                      callbacks=[snap, ModelCheckpoint(tmp_path, monitor="val_loss")])
    ref["trainer"] = trainer
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at epoch 2, step 3 \(global "
                                                 r"step 9\); training stopped before this"):
        trainer.fit(train, val, epochs=3)
    # no update from the bad step: the weights are those after the last good step
    for a, b in zip(params(model), snap.after_step[trainer.global_step], strict=True):
        np.testing.assert_array_equal(a, b)
    assert trainer.global_step == len(train) + 2
    fresh = setup(seed=3)[0]
    meta = load_checkpoint(tmp_path / "last", fresh)
    assert meta["epoch"] == 1
    for a, b in zip(params(fresh), snap.after_epoch[1], strict=True):
        np.testing.assert_array_equal(a, b)
    assert trainer.history.epochs == 1


def test_nan_loss_skip_mode_drops_the_batch():
    model, opt, sched, train, val = setup()
    ref = {}
    trainer = Trainer(model, opt, NaNAt(ref, epoch=2, step=3), progress=False,
                      on_nonfinite="skip")
    ref["trainer"] = trainer
    h = trainer.fit(train, val, epochs=3)
    assert h["skipped"] == [0, 1, 0]
    assert trainer.global_step == 3 * len(train) - 1
    assert all(np.isfinite(p.data).all() for p in model.parameters())
    assert all(math.isfinite(v) for v in h["loss"] + h["val_loss"])


class SqrtOfZero(nn.Module):
    """Finite forward, infinite gradient: d sqrt(w)/dw at w = 0."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(np.zeros(3, np.float32))

    def forward(self, x):
        return x.flatten(1)[:, :3] + self.w.sqrt()


def test_detect_anomaly_names_the_op():
    x, y = images(16)
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    model = SqrtOfZero()
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(),
                      progress=False, detect_anomaly=True)
    with np.errstate(divide="ignore"), \
            pytest.raises(RuntimeError, match="Function 'Sqrt' returned inf values"):
        trainer.fit(loader, epochs=1)


# ---------------------------------------------------------------- clipping
@pytest.mark.parametrize("kw, check", [
    (dict(grad_clip_norm=0.05),
     lambda gs: np.sqrt(sum(float(np.sum(g * g)) for g in gs)) <= 0.05 * (1 + 1e-4)),
    (dict(grad_clip_value=1e-3), lambda gs: max(np.abs(g).max() for g in gs) <= np.float32(1e-3)),
])
def test_gradient_clipping(kw, check):
    model, opt, sched, train, val = setup()
    seen = []
    step = opt.step

    def recording_step(*a, **k):
        seen.append(check([p.grad.data for p in model.parameters()]))
        return step(*a, **k)

    opt.step = recording_step
    Trainer(model, opt, nn.CrossEntropyLoss(), progress=False, **kw).fit(train, epochs=1)
    assert seen and all(seen)


# --------------------------------------------------------- seeds, eval, predict
def test_seed_makes_runs_identical():
    results = []
    for scramble in (1, 2):
        model, opt, sched, train, val = setup()
        fb.manual_seed(scramble)  # would change dropout masks without seed=
        Trainer(model, opt, nn.CrossEntropyLoss(), seed=11, progress=False).fit(train, epochs=2)
        results.append(params(model))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_evaluate_and_predict():
    model, opt, sched, train, val = setup()
    trainer = Trainer(model, opt, nn.CrossEntropyLoss(), metrics=["accuracy", "top2_accuracy"],
                      progress=False)
    trainer.fit(train, epochs=3)
    assert model.training
    res = trainer.evaluate(val)
    assert set(res) == {"loss", "accuracy", "top2_accuracy"} and model.training
    xv, yv = val.dataset.arrays
    out = trainer.predict(xv, batch_size=7)
    assert out.shape == (48, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out, trainer.predict(val))  # eval mode: no dropout
    assert res["accuracy"] == pytest.approx(np.mean(out.argmax(1) == yv))
    with fb.no_grad():
        model.eval()
        loss = nn.CrossEntropyLoss()(model(fb.tensor(xv)), fb.tensor(yv)).item()
        model.train()
    assert res["loss"] == pytest.approx(loss, rel=1e-5)
    assert res["accuracy"] > 0.8  # the three classes are easy


def test_progress_bar_shows_loss_metrics_and_speed(capsys):
    model, opt, sched, train, val = setup()
    Trainer(model, opt, nn.CrossEntropyLoss(), progress=True).fit(train, val, epochs=1)
    err = capsys.readouterr().err
    assert "Epoch 1/1" in err and "img/s=" in err and "loss=" in err and "acc=" in err
    assert "val_loss=" in err and f"{len(train)}/{len(train)}" in err


def test_history_is_json_able():
    model, opt, sched, train, val = setup()
    h = Trainer(model, opt, nn.CrossEntropyLoss(), progress=False).fit(train, val, epochs=2)
    assert h["epoch"] == [1, 2] and len(h["val_accuracy"]) == 2
    back = History.from_json(h.to_json())
    assert back == h and isinstance(back, History)
    assert json.loads(json.dumps(h)) == h.to_dict()
    epoch, value = h.best("val_loss")
    assert value == min(h["val_loss"]) and epoch in (1, 2)
    h2 = History()
    h2.append({"loss": 1.0})
    h2.append({"loss": 0.5, "val_loss": 0.7})
    assert h2 == {"loss": [1.0, 0.5], "val_loss": [None, 0.7]}


@pytest.mark.parametrize("kw, err, match", [
    (dict(device="cuda"), ValueError, "device 'cuda' is not available"),
    (dict(on_nonfinite="ignore"), ValueError, "on_nonfinite must be 'stop' or 'skip'"),
    (dict(grad_clip_norm=-1), ValueError, "grad_clip_norm must be a positive number"),
    (dict(metrics=["accuracy", "acc"]), ValueError, "metric names must be unique"),
    (dict(callbacks=[object()]), TypeError, "callbacks must be Callback instances"),
])
def test_constructor_errors(kw, err, match):
    model, opt, *_ = setup()
    with pytest.raises(err, match=match):
        Trainer(model, opt, nn.CrossEntropyLoss(), **kw)


def test_bad_batches_and_losses():
    model, opt, *_ = setup()
    trainer = Trainer(model, opt, nn.CrossEntropyLoss(), progress=False)
    with pytest.raises(TypeError, match="expected batches of \\(inputs, targets\\), got ndarray"):
        trainer.fit([np.zeros((2, 1, 6, 6), np.float32)], epochs=1)
    bad = Trainer(model, opt, lambda out, y: out, progress=False)
    x, y = images(8)
    with pytest.raises(TypeError, match=r"one-element Tensor, got Tensor of shape \(8, 3\)"):
        bad.fit(DataLoader(TensorDataset(x, y), batch_size=8), epochs=1)
