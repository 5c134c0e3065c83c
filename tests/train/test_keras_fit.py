"""Keras habits on the Trainer: fit(x, y, validation_data=, validation_split=, verbose=,
shuffle=), evaluate(x, y), predict(x), Keras-named callback options, the default metric of a
loss, and the allocator call; the loader form unchanged; a PyTorch loop as the oracle."""

from __future__ import annotations

import numpy as np
import pytest

import filterbank as fb
import filterbank.functional as F
from filterbank import nn, optim
from filterbank.data import DataLoader, TensorDataset
from filterbank.train import (
    Callback,
    EarlyStopping,
    History,
    ModelCheckpoint,
    Trainer,
    load_checkpoint,
)

N_FEATURES, N_CLASSES = 4, 3
_W = np.random.default_rng(42).standard_normal((N_FEATURES, N_CLASSES))


def blobs(n, seed):
    """Three linearly separable classes (the label is the argmax of a fixed projection)."""
    x = np.random.default_rng(seed).standard_normal((n, N_FEATURES)).astype(np.float32)
    return x, np.argmax(x @ _W, axis=1).astype(np.int64)


def mlp(seed=0, hidden=16, out=N_CLASSES):
    fb.manual_seed(seed)
    return nn.Sequential(nn.Linear(N_FEATURES, hidden), nn.ReLU(), nn.Linear(hidden, out))


def make(init=0, lr=0.1, momentum=0.9, **kw):
    model = mlp(init)
    opt = optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    kw.setdefault("progress", False)
    return model, Trainer(model, opt, nn.CrossEntropyLoss(), **kw)


def params(model):
    return [p.data.copy() for p in model.parameters()]


# ------------------------------------------------------------------ end to end
def test_fit_arrays_with_validation_data_learns():
    x, y = blobs(240, seed=1)
    xv, yv = blobs(90, seed=2)
    model, trainer = make(init=0)
    h = trainer.fit(x, y, validation_data=(xv, yv), epochs=8, batch_size=16, verbose=0)
    assert isinstance(h, History) and h is trainer.history
    assert h.history is h and h.history["loss"] == h["loss"]  # Keras's history.history
    assert h["epoch"] == list(range(1, 9))
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert len(h[key]) == 8 and all(v is not None for v in h[key]), key
    assert h["val_accuracy"][-1] > 0.9  # chance is 1/3
    assert h["loss"][-1] < 0.5 * h["loss"][0]
    assert trainer.global_step == 8 * 15  # 240 / 16 steps per epoch
    res = trainer.evaluate(xv, yv)
    assert res["accuracy"] == pytest.approx(h["val_accuracy"][-1])
    assert res["loss"] == pytest.approx(h["val_loss"][-1])


class DtypeProbe(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.seen = set()

    def forward(self, x):
        self.seen.add(x.data.dtype)
        return self.inner(x)


def test_fit_accepts_tensors_and_casts_float64_to_float32():
    x, y = blobs(64, seed=1)
    x64 = x.astype(np.float64)
    model = DtypeProbe(mlp())
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(),
                      progress=False)
    trainer.fit(fb.tensor(x64), fb.tensor(y), batch_size=16, validation_data=(x64, y),
                verbose=0)
    trainer.evaluate(x64, y)
    assert trainer.predict(x64).dtype == np.float32
    assert model.seen == {np.dtype(np.float32)}
    assert all(p.data.dtype == np.float32 for p in model.parameters())


class Recorder(nn.Module):
    """A linear model that records the first feature (the sample's index) of every input it
    sees in training and in eval mode."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(1, 2)
        self.train_seen, self.eval_seen = [], []

    def forward(self, x):
        (self.train_seen if self.training else self.eval_seen).append(x.data[:, 0].copy())
        return self.lin(x)


@pytest.mark.parametrize("n, split, n_train", [(10, 0.2, 8), (10, 0.3, 7), (7, 0.5, 3),
                                                (100, 0.15, 85), (9, 0.99, 0)])
def test_validation_split_holds_out_the_last_fraction_before_shuffling(n, split, n_train):
    x = np.arange(n, dtype=np.float32).reshape(n, 1)  # the feature is the sample's index
    y = np.arange(n) % 2
    model = Recorder()
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.0), nn.CrossEntropyLoss(),
                      progress=False)
    if n_train == 0:
        with pytest.raises(ValueError, match=r"validation_split=0.99 of 9 samples leaves 0 for "
                                             r"training and 9 for validation"):
            trainer.fit(x, y, validation_split=split, verbose=0)
        return
    trainer.fit(x, y, validation_split=split, batch_size=4, epochs=3, shuffle=True, verbose=0)
    per_epoch = -(-n_train // 4)
    assert len(model.train_seen) == 3 * per_epoch
    epochs = [np.concatenate(model.train_seen[i * per_epoch:(i + 1) * per_epoch])
              for i in range(3)]
    for seen in epochs:  # every epoch: each training sample exactly once, no validation one
        np.testing.assert_array_equal(np.sort(seen), np.arange(n_train))
    if n_train > 3:
        assert any(not np.array_equal(e, np.arange(n_train)) for e in epochs)  # shuffled
    val = np.concatenate(model.eval_seen)
    np.testing.assert_array_equal(val, np.tile(np.arange(n_train, n), 3))  # the last ones


def test_shuffle_false_keeps_the_order():
    x = np.arange(12, dtype=np.float32).reshape(12, 1)
    model = Recorder()
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.0), nn.CrossEntropyLoss(),
                      progress=False)
    trainer.fit(x, np.zeros(12, np.int64), batch_size=5, epochs=2, shuffle=False, verbose=0)
    assert [len(b) for b in model.train_seen] == [5, 5, 2] * 2
    np.testing.assert_array_equal(np.concatenate(model.train_seen), np.tile(np.arange(12), 2))


# ------------------------------------------------------------------ verbosity
def test_verbose_0_prints_nothing(capsys):
    x, y = blobs(64, seed=1)
    # progress=True would show a bar; EarlyStopping would log why it stops
    model, trainer = make(lr=0.0, progress=True)
    trainer.fit(x, y, validation_split=0.25, epochs=5, verbose=0,
                callbacks=[EarlyStopping(patience=1)])
    assert trainer.epoch == 2  # it did stop early, silently
    trainer.evaluate(x, y, verbose=0)
    trainer.predict(x, verbose=0)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    res = trainer.evaluate(x, y, verbose=2)
    assert capsys.readouterr().out == f"loss: {res['loss']:.4f} - accuracy: {res['accuracy']:.4f}\n"


def test_verbose_1_bar_and_2_one_line_per_epoch(capsys):
    x, y = blobs(64, seed=1)
    model, trainer = make()
    trainer.fit(x, y, validation_split=0.25, batch_size=16, epochs=3, verbose=2)
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert len(lines) == 3 and out.err == ""
    for i, line in enumerate(lines, start=1):
        assert line.startswith(f"Epoch {i}/3 - ") and " - loss: " in line
        assert " - accuracy: " in line and " - val_loss: " in line and "val_accuracy: " in line
    h = trainer.history
    assert f"val_loss: {h['val_loss'][-1]:.4f}" in lines[-1]
    trainer.fit(x, y, batch_size=16, epochs=1, verbose=1)
    out = capsys.readouterr()
    assert out.out == "" and "Epoch 4/4" in out.err and "| 4/4 [" in out.err  # 64 / 16 batches


# ------------------------------------------------------------------ determinism
def test_same_seed_same_run_and_generator_changes_the_order():
    x, y = blobs(96, seed=1)
    runs = []
    for scramble in (1, 2):
        model, trainer = make(init=0, seed=5)
        fb.manual_seed(scramble)  # a different global state: seed= must reset it
        h = trainer.fit(x, y, validation_split=0.25, batch_size=8, epochs=2, verbose=0)
        runs.append((params(model), h["loss"], h["val_loss"]))
    for a, b in zip(runs[0][0], runs[1][0], strict=True):
        np.testing.assert_array_equal(a, b)
    assert runs[0][1:] == runs[1][1:]
    got = []
    for gen in (1, 1, 2):
        model, trainer = make(init=0)
        trainer.fit(x, y, batch_size=8, epochs=1, verbose=0, generator=gen)
        got.append(params(model))
    for a, b in zip(got[0], got[1], strict=True):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(got[0], got[2]))


# --------------------------------------------------- the loader form is unchanged
def test_loader_form_unchanged_and_equal_to_the_array_form():
    x, y = blobs(100, seed=1)
    xv, yv = blobs(30, seed=2)
    model_a, ta = make(init=0)
    ha = ta.fit(x, y, batch_size=16, epochs=2, shuffle=False, validation_data=(xv, yv),
                verbose=0)
    model_b, tb = make(init=0)
    train = DataLoader(TensorDataset(x, y), batch_size=16)
    val = DataLoader(TensorDataset(xv, yv), batch_size=7)
    hb = tb.fit(train, val, epochs=2)  # positional validation loader
    for a, b in zip(params(model_a), params(model_b), strict=True):
        np.testing.assert_array_equal(a, b)
    for key in ("epoch", "loss", "accuracy", "val_accuracy"):
        assert ha[key] == hb[key], key
    np.testing.assert_allclose(ha["val_loss"], hb["val_loss"], rtol=1e-6)
    # loader form: epochs is the total, so the same call again trains no further ...
    before = params(model_b)
    tb.fit(train, val_loader=val, epochs=2)
    assert tb.epoch == 2 and all(np.array_equal(a, b) for a, b in zip(before, params(model_b)))
    # ... array form (Keras): each call trains `epochs` more epochs
    ta.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert ta.epoch == 4 and ta.history["epoch"] == [1, 2, 3, 4]
    assert ta.history["val_loss"][2:] == [None, None]
    # validation_data may be a loader too, and train_loader= still works by keyword
    model_c, tc = make(init=0)
    hc = tc.fit(train_loader=train, validation_data=val, epochs=2)
    assert hc["val_accuracy"] == hb["val_accuracy"]


def test_array_form_resume_is_bit_identical(tmp_path):
    x, y = blobs(60, seed=1)
    fb.manual_seed(0)
    model, trainer = make(init=0)
    trainer.fit(x, y, batch_size=8, epochs=4, validation_split=0.2, verbose=0)
    want = params(model)
    model, trainer = make(init=0)
    trainer.fit(x, y, batch_size=8, epochs=2, validation_split=0.2, verbose=0,
                callbacks=[ModelCheckpoint(tmp_path)])
    fb.manual_seed(123)  # everything must come from the checkpoint
    model, trainer = make(init=5)
    h = trainer.fit(x, y, batch_size=8, epochs=4, validation_split=0.2, verbose=0,
                    resume=tmp_path / "last")  # with resume=, epochs is the total
    assert h["epoch"] == [1, 2, 3, 4]
    for a, b in zip(params(model), want, strict=True):
        np.testing.assert_array_equal(a, b)
    # the same trainer, 4 epochs in, resumed again: still the total, not 4 more
    h = trainer.fit(x, y, batch_size=8, epochs=4, validation_split=0.2, verbose=0,
                    resume=tmp_path / "last")
    assert h["epoch"] == [1, 2, 3, 4]
    for a, b in zip(params(model), want, strict=True):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------- evaluate, predict
def test_evaluate_and_predict_on_arrays():
    x, y = blobs(50, seed=3)
    model, trainer = make()
    trainer.fit(x, y, epochs=3, batch_size=10, verbose=0)
    res = trainer.evaluate(x, y, batch_size=7)
    assert set(res) == {"loss", "accuracy"} and model.training
    assert res == pytest.approx(trainer.evaluate(DataLoader(TensorDataset(x, y), 50)))
    out = trainer.predict(x, batch_size=7)
    assert isinstance(out, np.ndarray) and out.shape == (50, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, trainer.predict(fb.tensor(x), batch_size=50), rtol=1e-6,
                               atol=1e-6)
    assert res["accuracy"] == pytest.approx(np.mean(out.argmax(1) == y))
    with fb.no_grad():
        want = nn.CrossEntropyLoss()(fb.tensor(out), fb.tensor(y)).item()
    assert res["loss"] == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("call, err, match", [
    (lambda t, x, y: t.fit(x, y[:-1]), ValueError,
     r"Trainer.fit: x and y must hold the same number of samples, got 20 inputs "
     r"\(x shape \(20, 4\)\) and 19 targets"),
    (lambda t, x, y: t.fit(x, y, validation_split=1.0), ValueError,
     r"validation_split must be a number in \[0, 1\), got 1.0"),
    (lambda t, x, y: t.fit(x, y, validation_split=-0.1), ValueError,
     r"validation_split must be a number in \[0, 1\)"),
    (lambda t, x, y: t.fit(x, y, validation_split=0.2, validation_data=(x, y)), ValueError,
     "pass validation_data or validation_split, not both"),
    (lambda t, x, y: t.fit(x), ValueError, r"y \(the targets\) is missing"),
    (lambda t, x, y: t.fit(x, y, batch_size=0), ValueError, "batch_size must be an int >= 1"),
    (lambda t, x, y: t.fit(x, y, verbose=3), ValueError, "verbose must be 0, 1, 2 or 'auto'"),
    (lambda t, x, y: t.fit(x, y, validation_data=(x, y, y)), ValueError,
     r"validation_data must be \(x_val, y_val\), got a tuple of 3 items"),
    (lambda t, x, y: t.fit(x, y, validation_data=(x, y[:5])), ValueError,
     r"Trainer.fit \(validation_data\): x and y must hold the same number of samples"),
    (lambda t, x, y: t.fit(x, y, validation_data=x), TypeError,
     r"validation_data must be \(x_val, y_val\) or a loader, got a single ndarray"),
    (lambda t, x, y: t.fit(x, y, callbacks=[object()]), TypeError,
     "callbacks must be Callback instances"),
    (lambda t, x, y: t.fit(x, [0, 1]), TypeError,
     "Trainer.fit: y must be a NumPy array or a Tensor, got list"),
    (lambda t, x, y: t.fit(DataLoader(TensorDataset(x, y), 4), y), TypeError,
     "x is a DataLoader .* but y is an array"),
    (lambda t, x, y: t.fit(DataLoader(TensorDataset(x, y), 4), batch_size=4), ValueError,
     "batch_size=4 applies to array inputs"),
    (lambda t, x, y: t.fit(DataLoader(TensorDataset(x, y), 4), validation_split=0.5),
     ValueError, "validation_split needs arrays x and y"),
    (lambda t, x, y: t.fit(), TypeError, "missing the training data"),
    (lambda t, x, y: t.evaluate(x), ValueError, r"Trainer.evaluate: .*y \(the targets\)"),
    (lambda t, x, y: t.evaluate(x, y[:3]), ValueError,
     "Trainer.evaluate: x and y must hold the same number of samples"),
    (lambda t, x, y: t.evaluate(x, y, verbose="yes"), ValueError,
     "Trainer.evaluate: verbose must be 0, 1, 2 or 'auto', got 'yes'"),
    (lambda t, x, y: t.predict(x, batch_size=-1), ValueError,
     "Trainer.predict: batch_size must be an int >= 1, got -1"),
])
def test_argument_errors(call, err, match):
    x, y = blobs(20, seed=0)
    model, trainer = make()
    with pytest.raises(err, match=match):
        call(trainer, x, y)
    assert trainer.epoch == 0 and trainer.callbacks == []


# ----------------------------------------------------------- Keras-named callbacks
class Script(Callback):
    """Puts a scripted value into the epoch's logs (before the other callbacks run) and keeps
    a copy of the weights after every epoch."""

    order = 20

    def __init__(self, values):
        self.values = values
        self.weights = {}

    def on_epoch_end(self, trainer, epoch, logs):
        logs["val_score"] = self.values[epoch]
        self.weights[epoch + 1] = params(trainer.model)


@pytest.mark.parametrize("values, stop_at, best", [
    ([0.9, 0.5, 0.7, 0.6, 0.8, 0.1], 4, 2),  # stops early: patience 2 after epoch 2
    ([0.9, 0.5, 0.6, 0.4, 0.45], 5, 4),  # runs to the end: the best is restored all the same
])
def test_restore_best_weights_restores_the_best_epoch(values, stop_at, best):
    x, y = blobs(64, seed=1)
    model, trainer = make()
    script = Script(values)
    es = EarlyStopping(monitor="val_score", mode="min", patience=2, min_delta=0.0,
                       restore_best_weights=True)
    h = trainer.fit(x, y, batch_size=16, epochs=5, verbose=0, callbacks=[script, es])
    assert trainer.epoch == stop_at and es.best_epoch == best
    assert trainer.callbacks == []  # fit's callbacks are for that call only
    for a, b in zip(params(model), script.weights[best], strict=True):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(params(model), script.weights[stop_at]))
    assert h["epoch"][-1] == stop_at


def test_save_best_only_writes_only_on_improvement(tmp_path):
    x, y = blobs(64, seed=1)
    values = [0.9, 0.5, 0.7, 0.4, 0.6]
    model, trainer = make()
    script = Script(values)
    keras = ModelCheckpoint(filepath=tmp_path / "k" / "ck-{epoch:02d}-{val_score:.1f}",
                            monitor="val_score", save_best_only=True)
    folder = ModelCheckpoint(tmp_path / "d", monitor="val_score", save_best_only=True)
    every = ModelCheckpoint(filepath=str(tmp_path / "e" / "latest"), monitor="val_score")
    trainer.fit(x, y, batch_size=16, epochs=5, verbose=0, callbacks=[script, keras, folder, every])
    assert sorted(p.name for p in (tmp_path / "k").glob("*.json")) == [
        "ck-01-0.9.json", "ck-02-0.5.json", "ck-04-0.4.json"]
    for epoch in (1, 2, 4):
        fresh = mlp(seed=9)
        meta = load_checkpoint(tmp_path / "k" / f"ck-{epoch:02d}-{values[epoch - 1]:.1f}", fresh)
        assert meta["epoch"] == epoch
        for a, b in zip(params(fresh), script.weights[epoch], strict=True):
            np.testing.assert_array_equal(a, b)
    assert keras.best_epoch == 4 and keras.last_saved.name == "ck-04-0.4"
    assert sorted(p.name for p in (tmp_path / "d").glob("*.json")) == ["best.json"]
    assert load_checkpoint(folder.best_path)["epoch"] == 4
    assert load_checkpoint(tmp_path / "e" / "latest")["epoch"] == 5  # not best only: every epoch


# ------------------------------------------------------------- default metrics
@pytest.mark.parametrize("loss, want", [
    (nn.CrossEntropyLoss(), ["accuracy"]), (nn.NLLLoss(), ["accuracy"]),
    (F.cross_entropy, ["accuracy"]), (nn.BCELoss(), ["accuracy"]),
    (nn.BCEWithLogitsLoss(), ["accuracy"]), (nn.MSELoss(), []), (nn.L1Loss(), []),
    (nn.SmoothL1Loss(), []), (nn.HuberLoss(), []), (F.mse_loss, []),
    (lambda out, y: (out * 0).sum(), []),
])
def test_default_metric_fits_the_loss(loss, want):
    model = mlp()
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.1), loss, progress=False)
    assert [m.name for m in trainer._new_metrics()] == want


def test_regression_history_has_no_accuracy_and_explicit_metrics_are_kept():
    g = np.random.default_rng(0)
    x = g.standard_normal((64, N_FEATURES)).astype(np.float32)
    y = (x @ g.standard_normal((N_FEATURES, 1))).astype(np.float32)
    model = mlp(out=1)
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.05), nn.MSELoss(),
                      progress=False)
    h = trainer.fit(x, y, validation_split=0.25, batch_size=16, epochs=4, verbose=0)
    assert "accuracy" not in h and "val_accuracy" not in h
    assert h["val_loss"][-1] < h["val_loss"][0]
    assert set(trainer.evaluate(x, y)) == {"loss"}
    model, trainer = make(metrics=["accuracy", "top2_accuracy"])
    assert set(trainer.evaluate(*blobs(20, 0))) == {"loss", "accuracy", "top2_accuracy"}
    model, trainer = make(metrics=[])
    assert set(trainer.evaluate(*blobs(20, 0))) == {"loss"}


@pytest.mark.parametrize("logits", [True, False])
@pytest.mark.parametrize("metrics", [None, ["accuracy"], ["binary_accuracy"]])
def test_binary_losses_get_binary_accuracy(logits, metrics):
    x, labels = blobs(80, seed=4)
    y = (labels == 0).astype(np.float32).reshape(-1, 1)
    fb.manual_seed(0)
    layers = [nn.Linear(N_FEATURES, 8), nn.ReLU(), nn.Linear(8, 1)]
    model = nn.Sequential(*layers) if logits else nn.Sequential(*layers, nn.Sigmoid())
    loss = nn.BCEWithLogitsLoss() if logits else nn.BCELoss()
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.5), loss, metrics=metrics,
                      progress=False)
    trainer.fit(x, y, batch_size=16, epochs=6, verbose=0)
    res = trainer.evaluate(x, y)
    name = "binary_accuracy" if metrics == ["binary_accuracy"] else "accuracy"
    assert set(res) == {"loss", name}
    out = trainer.predict(x)
    pred = out > (0.0 if logits else 0.5)
    if metrics == ["binary_accuracy"] and logits:  # by name: threshold 0.5 on the output
        pred = out > 0.5
    assert res[name] == pytest.approx(np.mean(pred == (y > 0.5)))
    if metrics != ["binary_accuracy"]:
        assert res[name] > 0.8  # learnt (chance ~ max(p, 1 - p))


# ------------------------------------------------------------- allocator call
def test_trainer_tunes_the_allocator_unless_asked_not_to(monkeypatch):
    from filterbank import _allocator

    calls = []
    monkeypatch.setattr(_allocator, "tune", lambda: calls.append(1) or True)
    make()
    assert calls == [1]
    make(tune_allocator=False)
    assert calls == [1]


def test_allocator_env_opt_out_reaches_through_the_trainer(monkeypatch):
    from filterbank import _allocator

    monkeypatch.setattr(_allocator, "tuned", False)
    monkeypatch.setenv("FILTERBANK_MALLOC_TUNING", "0")
    make()
    assert _allocator.tuned is False


# ------------------------------------------------------------- PyTorch oracle
def test_fit_matches_a_pytorch_loop():
    torch = pytest.importorskip("torch")
    x, y = blobs(70, seed=5)
    xv, yv = blobs(30, seed=6)
    model, trainer = make(init=3, lr=0.1, momentum=0.9)
    tmodel = torch.nn.Sequential(torch.nn.Linear(N_FEATURES, 16), torch.nn.ReLU(),
                                 torch.nn.Linear(16, N_CLASSES))
    with torch.no_grad():
        for tp, p in zip(tmodel.parameters(), model.parameters(), strict=True):
            tp.copy_(torch.from_numpy(p.data.copy()))
    h = trainer.fit(x, y, batch_size=16, epochs=3, shuffle=False, validation_data=(xv, yv),
                    verbose=0)
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.1, momentum=0.9)
    lossf = torch.nn.CrossEntropyLoss()
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    losses, accs, val_losses, val_accs = [], [], [], []
    for _ in range(3):
        total, correct = 0.0, 0
        for i in range(0, len(x), 16):  # the last batch has 6 samples: sample-weighted mean
            xb, yb = tx[i:i + 16], ty[i:i + 16]
            topt.zero_grad()
            out = tmodel(xb)
            loss = lossf(out, yb)
            loss.backward()
            topt.step()
            total += loss.item() * len(xb)
            correct += int((out.argmax(1) == yb).sum())
        losses.append(total / len(x))
        accs.append(correct / len(x))
        with torch.no_grad():
            out = tmodel(torch.from_numpy(xv))
            val_losses.append(lossf(out, torch.from_numpy(yv)).item())
            val_accs.append(float((out.argmax(1) == torch.from_numpy(yv)).float().mean()))
    np.testing.assert_allclose(h["loss"], losses, rtol=1e-5)
    np.testing.assert_allclose(h["val_loss"], val_losses, rtol=1e-5)
    assert h["accuracy"] == pytest.approx(accs) and h["val_accuracy"] == pytest.approx(val_accs)
    for tp, p in zip(tmodel.parameters(), model.parameters(), strict=True):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-5, atol=1e-6)
