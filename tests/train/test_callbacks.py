"""Callbacks: early stopping, checkpoints, LR scheduling (epoch/step, plateau), CSV/JSON logs."""

from __future__ import annotations

import csv
import json
from types import SimpleNamespace

import numpy as np
import pytest

import filterbank as fb
from filterbank import nn, optim
from filterbank.data import DataLoader, TensorDataset
from filterbank.train import (
    CSVLogger,
    EarlyStopping,
    JSONLogger,
    LRSchedulerCallback,
    ModelCheckpoint,
    Trainer,
    load_checkpoint,
)


def fake_trainer():
    fb.manual_seed(0)
    model = nn.Linear(2, 2)
    return SimpleNamespace(model=model, stop_training=False, epoch=0, messages=[],
                           log=lambda m: None, saved=[])


def feed(cb, trainer, values, key="val_loss"):
    stopped_after = None
    for e, v in enumerate(values):
        with fb.no_grad():
            trainer.model.weight.data[...] = e  # "weights of epoch e+1"
        cb.on_epoch_end(trainer, e, {key: v, "loss": 1.0})
        if trainer.stop_training and stopped_after is None:
            stopped_after = e + 1
            break
    return stopped_after


@pytest.mark.parametrize("values, patience, mode, min_delta, stop, best_epoch", [
    ([1.0, 0.9, 0.95, 0.96, 0.97], 2, "min", 0.0, 4, 2),
    ([1.0, 0.9, 0.8, 0.7], 1, "min", 0.0, None, 4),
    ([1.0, 0.99, 0.98, 0.97], 2, "min", 0.05, 3, 1),
    ([0.5, 0.6, 0.55, 0.7, 0.6, 0.6], 2, "max", 0.0, 6, 4),
    ([1.0, 1.0], 0, "min", 0.0, 2, 1),
    ([1.0, float("nan"), float("nan")], 2, "min", 0.0, 3, 1),
])
def test_early_stopping_patience(values, patience, mode, min_delta, stop, best_epoch):
    t = fake_trainer()
    cb = EarlyStopping("val_loss", patience=patience, mode=mode, min_delta=min_delta,
                       restore_best=True)
    assert feed(cb, t, values) == stop
    assert cb.best_epoch == best_epoch
    cb.on_train_end(t)  # restore_best: the weights of the best epoch come back
    assert float(t.model.weight.data[0, 0]) == best_epoch - 1


def test_early_stopping_state_round_trip_and_auto_mode():
    t = fake_trainer()
    cb = EarlyStopping("val_accuracy", patience=3)
    assert cb.mode == "max"
    feed(cb, t, [0.5, 0.7, 0.6], key="val_accuracy")
    cb2 = EarlyStopping("val_accuracy", patience=3)
    cb2.load_state_dict(cb.state_dict())
    assert (cb2.best, cb2.wait, cb2.best_epoch) == (0.7, 1, 2)
    with pytest.raises(ValueError, match=r"monitored metric 'val_f1' is not in the epoch's logs"):
        EarlyStopping("val_f1").on_epoch_end(t, 0, {"loss": 1.0})
    with pytest.raises(ValueError, match="mode must be 'min', 'max' or 'auto'"):
        EarlyStopping(mode="lowest")


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def data_loaders():
    g = np.random.default_rng(0)
    x = g.standard_normal((64, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    ds = TensorDataset(x, y)
    return DataLoader(ds, batch_size=16, shuffle=True, generator=1), DataLoader(ds, 32)


def model_opt(lr=0.1):
    fb.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    return model, optim.SGD(model.parameters(), lr=lr)


def test_early_stopping_in_trainer():
    train, val = data_loaders()
    model, opt = model_opt(lr=0.0)  # nothing improves
    trainer = Trainer(model, opt, nn.CrossEntropyLoss(), progress=False,
                      callbacks=[EarlyStopping("val_loss", patience=2)])
    h = trainer.fit(train, val, epochs=20)
    assert h["epoch"] == [1, 2, 3]


def test_model_checkpoint_best_and_last(tmp_path):
    t = fake_trainer()
    t.save_checkpoint = lambda p: t.saved.append((p.name, t.epoch))
    cb = ModelCheckpoint(tmp_path, monitor="val_loss")
    for e, v in enumerate([1.0, 0.8, 0.9, 0.7]):
        t.epoch = e + 1
        cb.on_epoch_end(t, e, {"loss": 1.0, "val_loss": v})
    assert t.saved == [("last", 1), ("best", 1), ("last", 2), ("best", 2), ("last", 3),
                       ("last", 4), ("best", 4)]
    t.saved.clear()
    cb.on_epoch_end(t, 4, {"loss": float("nan"), "val_loss": 0.1})
    assert t.saved == []  # a non-finite epoch is never saved
    only_best = ModelCheckpoint(tmp_path, monitor="val_acc", mode="max", save_last=False)
    only_best.on_epoch_end(t, 0, {"loss": 1.0, "val_acc": 0.5})
    assert t.saved == [("best", 4)]


def test_model_checkpoint_files_in_trainer(tmp_path):
    train, val = data_loaders()
    model, opt = model_opt()
    cb = ModelCheckpoint(tmp_path / "ck", monitor="val_accuracy", mode="max")
    h = Trainer(model, opt, nn.CrossEntropyLoss(), progress=False, callbacks=[cb]).fit(
        train, val, epochs=3)
    assert load_checkpoint(cb.last_path)["epoch"] == 3
    best = load_checkpoint(cb.best_path)
    assert best["epoch"] == h.best("val_accuracy", "max")[0] == cb.best_epoch


def test_lr_scheduler_epoch_and_step_intervals():
    train, val = data_loaders()
    model, opt = model_opt()
    sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    h = Trainer(model, opt, nn.CrossEntropyLoss(), progress=False,
                callbacks=[LRSchedulerCallback(sched, "epoch")]).fit(train, epochs=3)
    assert h["lr"] == [0.1, 0.05, 0.025]
    model, opt = model_opt()
    sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    Trainer(model, opt, nn.CrossEntropyLoss(), progress=False,
            callbacks=[LRSchedulerCallback(sched, "step")]).fit(train, epochs=1)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** len(train))


def test_reduce_on_plateau_gets_the_metric():
    train, val = data_loaders()
    model, opt = model_opt(lr=1e-6)  # too small to improve the loss: a plateau
    sched = optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    trainer = Trainer(model, opt, nn.CrossEntropyLoss(), scheduler=sched, progress=False)
    h = trainer.fit(train, epochs=4)  # no validation: "loss" is monitored
    assert h["lr"] == [1e-6, 1e-6, 5e-7, 2.5e-7]  # epoch 1 sets the best, then reductions
    with pytest.raises(ValueError, match="ReduceLROnPlateau needs a metric"):
        LRSchedulerCallback(sched, "step")
    with pytest.raises(ValueError, match="interval must be 'epoch' or 'step'"):
        LRSchedulerCallback(sched, "batch")


def test_csv_and_json_loggers_and_resume_appends(tmp_path):
    train, val = data_loaders()
    model, opt = model_opt()
    csv_path, json_path = tmp_path / "log.csv", tmp_path / "h.json"
    cbs = [CSVLogger(csv_path), JSONLogger(json_path), ModelCheckpoint(tmp_path)]
    h = Trainer(model, opt, nn.CrossEntropyLoss(), progress=False, callbacks=cbs).fit(
        train, val, epochs=2)
    rows = read_csv(csv_path)
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert float(rows[1]["val_loss"]) == pytest.approx(h["val_loss"][1])
    assert json.loads(json_path.read_text()) == h.to_dict()
    model, opt = model_opt()
    cbs = [CSVLogger(csv_path), JSONLogger(json_path), ModelCheckpoint(tmp_path)]
    h = Trainer(model, opt, nn.CrossEntropyLoss(), progress=False, callbacks=cbs).fit(
        train, val, epochs=3, resume=tmp_path / "last")
    rows = read_csv(csv_path)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert json.loads(json_path.read_text())["epoch"] == [1, 2, 3] == h["epoch"]
    # a fresh run replaces the file
    model, opt = model_opt()
    Trainer(model, opt, nn.CrossEntropyLoss(), progress=False,
            callbacks=[CSVLogger(csv_path)]).fit(train, epochs=1)
    assert len(read_csv(csv_path)) == 1


@pytest.mark.parametrize("monitor, mode", [
    ("val_loss", "min"), ("loss", "min"), ("val_accuracy", "max"), ("acc", "max"),
    ("val_auc", "max"), ("val_f1", "max"), ("val_recall", "max"), ("val_mae", "min"),
    ("val_accuracy_loss", "min"), ("mean_abs_error", "min"),
])
def test_auto_mode_follows_keras(monitor, mode):
    assert EarlyStopping(monitor).mode == mode
    assert ModelCheckpoint("unused", monitor=monitor).mode == mode


def test_keras_names_and_old_aliases():
    t = fake_trainer()
    cb = EarlyStopping(monitor="val_loss", mode="min", patience=1, min_delta=0.05,
                       restore_best_weights=True)
    assert cb.restore_best and cb.restore_best_weights
    assert feed(cb, t, [1.0, 0.97, 0.9]) == 2  # 0.97 is not 0.05 better than 1.0
    cb.on_train_end(t)
    assert float(t.model.weight.data[0, 0]) == 0  # epoch 1's weights
    assert EarlyStopping(restore_best=True).restore_best_weights
    assert not EarlyStopping(restore_best_weights=False).restore_best
    with pytest.raises(ValueError, match="restore_best=True and restore_best_weights=False "
                                         "contradict"):
        EarlyStopping(restore_best=True, restore_best_weights=False)
    with pytest.raises(TypeError, match="EarlyStopping: min_delta must be a number, got str"):
        EarlyStopping(min_delta="0.1")


def test_model_checkpoint_keras_filepath(tmp_path):
    t = fake_trainer()
    t.save_checkpoint = lambda p: t.saved.append(str(p))
    cb = ModelCheckpoint(filepath=tmp_path / "m-{epoch}-{val_loss:.2f}", save_best_only=True)
    for e, v in enumerate([1.0, 0.8, 0.9, 0.7]):
        cb.on_epoch_end(t, e, {"loss": 1.0, "val_loss": v})
    assert t.saved == [str(tmp_path / n) for n in ("m-1-1.00", "m-2-0.80", "m-4-0.70")]
    t.saved.clear()
    folder = ModelCheckpoint(tmp_path, save_best_only=True)
    assert (folder.save_best, folder.save_last) == (True, False)
    every = ModelCheckpoint(filepath=tmp_path / "m-{epoch}")  # save_best_only=False: each epoch
    for e, v in enumerate([1.0, 1.2]):
        every.on_epoch_end(t, e, {"loss": 1.0, "val_loss": v})
    assert t.saved == [str(tmp_path / "m-1"), str(tmp_path / "m-2")]
    with pytest.raises(ValueError, match="ModelCheckpoint: pass a folder .* exactly one"):
        ModelCheckpoint()
    with pytest.raises(ValueError, match="exactly one"):
        ModelCheckpoint(tmp_path, filepath=tmp_path / "x")
    bad = ModelCheckpoint(filepath=tmp_path / "{val_acc:.2f}")
    with pytest.raises(ValueError, match=r"cannot fill the checkpoint name .*available fields: "
                                         r"\['epoch', 'loss', 'val_loss'\]"):
        bad.on_epoch_end(t, 0, {"loss": 1.0, "val_loss": 0.5})


def test_callbacks_take_keras_verbose():
    t = fake_trainer()
    t.log = t.messages.append
    quiet = EarlyStopping("val_loss", patience=1, verbose=0)
    feed(quiet, t, [1.0, 2.0])
    assert t.stop_training and t.messages == []
    t.stop_training = False
    feed(EarlyStopping("val_loss", patience=1), t, [1.0, 2.0])  # default: says why it stopped
    assert len(t.messages) == 1 and "stopping after epoch 2" in t.messages[0]
    t.messages.clear()
    t.stop_training = False
    t.save_checkpoint = lambda p: t.saved.append(p)
    loud = ModelCheckpoint(filepath="ck-{epoch}", monitor="val_loss", save_best_only=True,
                           verbose=1)
    feed(loud, t, [1.0, 2.0, 0.5])
    assert t.messages == ["ModelCheckpoint: epoch 1: saved ck-1",
                          "ModelCheckpoint: epoch 3: saved ck-3"]
    t.messages.clear()
    feed(ModelCheckpoint(filepath="ck-{epoch}"), t, [1.0])  # default 0: silent
    assert t.messages == []
    for cb in (EarlyStopping, ModelCheckpoint):
        with pytest.raises(ValueError, match=rf"{cb.__name__}: verbose must be 0, 1 or 2"):
            cb(filepath="x", verbose=3) if cb is ModelCheckpoint else cb(verbose=3)
