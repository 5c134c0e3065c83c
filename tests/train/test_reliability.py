"""Issue 15: runaway training, leaked prefetch threads, dead-end run folders, resume records.

Trainer-level cases use tiny MLPs on synthetic images; run-level cases call the CLI on the
embedded Fashion-MNIST sample with ``--limit`` and a 4-filter SimpleCNN (about a second each).
Each test names the issue item it reproduces.
"""

from __future__ import annotations

import csv
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from harness import cli as call
from harness import error_line as last_line

import filterbank as fb
from filterbank import nn, optim
from filterbank.data import DataLoader, TensorDataset
from filterbank.train import Callback, ModelCheckpoint, NonFiniteLossError, Trainer
from filterbank.train import run as fbrun
from filterbank.train.checkpoint import load_checkpoint
from filterbank.train.trainer import DIVERGENCE_FACTOR, DivergenceError


def images(n=96, size=6, seed=0):
    g = np.random.default_rng(seed)
    y = g.integers(0, 3, n)
    x = g.random((n, 1, size, size), dtype=np.float32) * 0.3
    x[y == 0, :, : size // 2, :] += 1
    x[y == 1, :, size // 2:, :] += 1
    return x, y


def setup(lr=0.1, prefetch=0, n=96):
    fb.manual_seed(0)
    train = DataLoader(TensorDataset(*images(n)), batch_size=16, shuffle=True, generator=1,
                       prefetch=prefetch)
    val = DataLoader(TensorDataset(*images(48, seed=1)), batch_size=32, prefetch=prefetch)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 16), nn.ReLU(), nn.Linear(16, 3))
    return model, optim.SGD(model.parameters(), lr=lr, momentum=0.9), train, val


def params(model):
    return [p.data.copy() for p in model.parameters()]


class LossAt:
    """Cross-entropy plus ``add`` (a constant: the reported loss changes, the gradient does
    not) or times ``mul``, at training call ``at`` (1-based) or from it on; ``val_epoch``:
    add to every validation loss of that epoch instead."""

    def __init__(self, at=None, add=0.0, mul=1.0, every=False, val_epoch=None):
        self.ce = nn.CrossEntropyLoss()
        self.at, self.add, self.mul, self.every, self.val_epoch = at, add, mul, every, val_epoch
        self.calls, self.trainer = 0, None

    def __call__(self, out, y):
        loss = self.ce(out, y)
        if fb.is_grad_enabled():
            self.calls += 1
            if self.at is not None and (self.calls == self.at
                                        or (self.every and self.calls >= self.at)):
                return loss * self.mul + self.add
        elif self.val_epoch is not None and self.trainer.epoch + 1 == self.val_epoch:
            return loss + self.add
        return loss


class Snapshot(Callback):
    def __init__(self):
        self.after_step, self.after_epoch = {}, {}

    def on_batch_end(self, trainer, step, logs):
        self.after_step[step] = params(trainer.model)

    def on_epoch_end(self, trainer, epoch, logs):
        self.after_epoch[epoch + 1] = params(trainer.model)


# -------------------------------------------------------- item 1: finite divergence
def test_finite_divergence_stops_naming_the_step_and_keeps_the_last_checkpoint(tmp_path):
    """A loss 1e9 higher at epoch 2, step 3 (global step 9) stops before that update; the
    checkpoint of epoch 1 stays; the message says the weights are those after the update."""
    model, opt, train, val = setup()
    snap = Snapshot()
    loss = LossAt(at=len(train) + 3, add=1e9)
    trainer = Trainer(model, opt, loss, progress=False,
                      callbacks=[snap, ModelCheckpoint(tmp_path, monitor="val_loss")])
    with pytest.raises(DivergenceError, match=r"the loss diverged at epoch 2, step 3 \(global "
                                              r"step 9\): 1e\+09 is more than 10000 times") as e:
        trainer.fit(train, val, epochs=3)
    assert not isinstance(e.value, NonFiniteLossError)
    assert "weights in memory are those after the previous update (global step 8)" in str(e.value)
    assert "a checkpoint saved after epoch 1" in str(e.value)
    for a, b in zip(params(model), snap.after_step[8], strict=True):
        np.testing.assert_array_equal(a, b)  # the step was not applied
    assert trainer.global_step == 8 and trainer.history.epochs == 1
    fresh = setup()[0]
    assert load_checkpoint(tmp_path / "last", fresh)["epoch"] == 1
    for a, b in zip(params(fresh), snap.after_epoch[1], strict=True):
        np.testing.assert_array_equal(a, b)


def test_sgd_at_a_huge_learning_rate_is_caught_at_step_2():
    """The issue's lr=1e6: the loss goes from about 1.1 to more than 1e4 times that in one
    step and stays finite for a while; it used to train on silently."""
    model, opt, train, val = setup(lr=1e6)
    trainer = Trainer(model, opt, nn.CrossEntropyLoss(), progress=False)
    with pytest.raises(DivergenceError, match=r"diverged at epoch 1, step 2 \(global step 2\)"):
        trainer.fit(train, val, epochs=3)


def test_gradual_divergence_is_caught_against_the_first_epochs_level():
    """A loss that grows 10x per step from epoch 3 on (a constant added: the gradient is
    unchanged): the running level follows it within 10x, the first epoch's level does not."""
    model, opt, train, val = setup()

    class Growing(LossAt):
        def __call__(self, out, y):
            loss = super().__call__(out, y)
            return loss + (10.0 ** (self.calls - 12) if self.calls > 12 else 0.0)

    trainer = Trainer(model, opt, Growing(), progress=False)
    with pytest.raises(DivergenceError, match=r"diverged at epoch 3, step 4 \(global step "
                                              r"16\): 1e\+04 is more than 10000 times"):
        trainer.fit(train, epochs=4)


def test_a_resumed_run_checks_its_first_step_against_its_history(tmp_path):
    """After load_checkpoint the level comes from the restored History: the first step of
    the resumed fit is checked, as in the uninterrupted run."""
    model, opt, train, val = setup()
    Trainer(model, opt, nn.CrossEntropyLoss(), progress=False,
            callbacks=[ModelCheckpoint(tmp_path)]).fit(train, val, epochs=1)
    model, opt, train, val = setup()
    trainer = Trainer(model, opt, LossAt(at=1, add=1e9), progress=False)
    with pytest.raises(DivergenceError, match=r"diverged at epoch 2, step 1 \(global step 7\)"):
        trainer.fit(train, val, epochs=2, resume=tmp_path / "last")


def test_normal_training_never_trips_it_even_100x_tighter():
    """The default, 1e4, leaves a wide margin: these runs pass with a factor of 100 too."""
    for lr in (0.1, 0.5):
        model, opt, train, val = setup(lr=lr)
        Trainer(model, opt, nn.CrossEntropyLoss(), progress=False,
                divergence_factor=DIVERGENCE_FACTOR / 100).fit(train, val, epochs=4)


def test_a_well_fit_model_may_meet_a_hard_batch():
    """First loss 1e-6 (fine-tuning a perfect fit), then a batch with loss 5: 5e6 times the
    level, but the level is never taken below 1."""
    model, opt, train, val = setup(lr=0.0)

    class Tiny(LossAt):
        def __call__(self, out, y):
            loss = self.ce(out, y)
            self.calls += 1
            return loss * 0.0 + (5.0 if self.calls == 4 else 1e-6)

    Trainer(model, opt, Tiny(), progress=False).fit(train, epochs=1)


def test_the_check_can_be_turned_off():
    model, opt, train, val = setup()
    trainer = Trainer(model, opt, LossAt(at=len(train) + 3, add=1e9), progress=False,
                      divergence_factor=None)
    assert trainer.fit(train, val, epochs=2).epochs == 2


def test_validation_divergence_stops_before_the_checkpoint(tmp_path):
    model, opt, train, val = setup()
    loss = LossAt(val_epoch=2, add=1e9)
    trainer = Trainer(model, opt, loss, progress=False,
                      callbacks=[ModelCheckpoint(tmp_path, monitor="val_loss")])
    loss.trainer = trainer
    with pytest.raises(DivergenceError, match="the validation loss diverged after epoch 2"):
        trainer.fit(train, val, epochs=3)
    assert load_checkpoint(tmp_path / "last")["epoch"] == 1


@pytest.mark.parametrize("factor", [1, 0.5, 0, -3, float("inf"), float("nan"), True, "1e4"])
def test_divergence_factor_is_validated(factor):
    model, opt, _, _ = setup()
    with pytest.raises(ValueError, match="divergence_factor must be a finite number > 1 or "
                                         "None"):
        Trainer(model, opt, nn.CrossEntropyLoss(), divergence_factor=factor)


# --------------------------------------------- item 10: fit closes its iterators
def _settled_threads(limit, timeout=5.0):
    deadline = time.monotonic() + timeout
    while threading.active_count() > limit and time.monotonic() < deadline:
        time.sleep(0.02)
    return threading.active_count()


def test_fit_stopping_mid_epoch_closes_its_prefetch_threads():
    """20 fits stopping on NaN at step 2 left 21 threads (the traceback kept each iterator);
    fit now closes the iterator on the way out, before the caller sees the error."""
    before = _settled_threads(threading.active_count())
    errors = []
    for _ in range(20):
        model, opt, train, val = setup(prefetch=2)
        trainer = Trainer(model, opt, LossAt(at=2, mul=float("nan")), progress=False)
        try:
            trainer.fit(train, val, epochs=2)
        except NonFiniteLossError as e:
            errors.append(e)  # the tracebacks stay alive: only close() can stop the threads
        assert threading.active_count() == before
    assert len(errors) == 20


def test_evaluate_failing_mid_loader_closes_its_prefetch_thread():
    before = _settled_threads(threading.active_count())
    model, opt, train, val = setup(prefetch=2, n=200)

    def broken(out, y):
        raise ValueError("bad batch")

    trainer = Trainer(model, opt, broken, progress=False)
    with pytest.raises(ValueError, match="bad batch") as e:
        trainer.evaluate(train)
    assert threading.active_count() == before
    with pytest.raises(ValueError, match="bad batch"):
        trainer.fit(train, epochs=1)
    assert threading.active_count() == before
    del e


# ----------------------------------------------------------- the command line
BASE = ["--model", "simple_cnn", "--dataset", "fashion-mnist-sample", "--model-arg",
        "width=4", "--model-arg", "hidden=16", "--no-progress"]






def epochs_logged(run: Path) -> list[int]:
    with open(run / "metrics.csv", newline="") as f:
        return [int(r["epoch"]) for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A 2-epoch run, finished (model.json, results in config.json)."""
    run = tmp_path_factory.mktemp("runs") / "done"
    code, _, err = call(["train", *BASE, "--limit", "200", "--epochs", "2", "--out", run])
    assert code == 0, err
    return run


def test_the_issues_divergent_command_exits_1_and_leaves_a_reusable_folder(tmp_path):
    """Items 1 and 8: the exact command of the issue exited 0 after an epoch-1 loss of
    2.9e19; now one line naming the step, exit 1; the folder without a checkpoint is then
    reused by --out (said so), while --resume on it points to --out."""
    run = tmp_path / "r"
    code, out, err = call(["train", "--model", "simple_cnn", "--dataset",
                           "fashion-mnist-sample", "--limit", "600", "--model-arg", "width=4",
                           "--model-arg", "hidden=16", "--epochs", "3", "--optimizer", "sgd",
                           "--lr", "1e6", "--out", run, "--no-progress"])
    assert code == 1
    line = last_line(err)
    assert "the loss diverged at epoch 1, step 2 (global step 2)" in line
    assert "weights in memory are those after the previous update (global step 1)" in line
    assert f"No checkpoint was written (it stopped in its first epoch); rerun with other " \
           f"options and --out {run} to reuse the folder" in line
    assert "test accuracy" not in out
    assert (run / "config.json").is_file() and not (run / "checkpoints" / "last.json").exists()

    code, _, err = call(["train", "--resume", run])
    assert code == 1
    assert f"{run} holds no checkpoint: its run stopped before its first epoch ended" in \
        last_line(err) and f"--out {run}" in last_line(err)

    code, out, err = call(["train", *BASE, "--limit", "200", "--epochs", "1", "--out", run])
    assert code == 0, err
    assert f"filterbank: {run} holds a run that stopped before its first epoch ended (a " \
           f"config.json, no checkpoint); starting afresh in it" in err
    assert epochs_logged(run) == [1]
    assert json.loads((run / "config.json").read_text())["training"]["lr"] != 1e6


@pytest.mark.parametrize("text", ['{"name": "my project"}', "not json", "[1, 2]"])
def test_out_never_reuses_a_folder_whose_config_json_is_not_a_runs(tmp_path, text):
    """The dead-end reuse only takes a folder whose config.json is filterbank's own."""
    (tmp_path / "config.json").write_text(text)
    (tmp_path / "metrics.csv").write_text("mine")
    code, _, err = call(["train", *BASE, "--limit", "100", "--out", tmp_path])
    assert code == 1
    assert f"--out {tmp_path}: its config.json is not a filterbank run's" in last_line(err)
    assert (tmp_path / "config.json").read_text() == text
    assert (tmp_path / "metrics.csv").read_text() == "mine"


def test_divergence_in_epoch_2_keeps_the_epoch_1_checkpoint(tmp_path, monkeypatch):
    run = tmp_path / "r"
    real = fbrun.nn.CrossEntropyLoss

    class Exploding(real):  # +1e9 at the 5th training step: epoch 2 (4 steps per epoch)
        calls = 0

        def __call__(self, out, y):
            loss = super().__call__(out, y)
            if fb.is_grad_enabled():
                type(self).calls += 1
                if type(self).calls == 5:
                    return loss + 1e9
            return loss

    monkeypatch.setattr(fbrun.nn, "CrossEntropyLoss", Exploding)
    code, out, err = call(["train", *BASE, "--limit", "400", "--batch-size", "96",
                           "--epochs", "3", "--out", run])
    assert code == 1
    line = last_line(err)
    assert "diverged at epoch 2, step 1 (global step 5)" in line
    assert f"The run folder keeps the last good checkpoint, {run / 'checkpoints' / 'last.json'}" \
           f" (epoch 1); --resume {run} continues from it" in line
    assert load_checkpoint(run / "checkpoints" / "last")["epoch"] == 1
    assert epochs_logged(run) == [1]


@pytest.mark.parametrize("arg, expect", [
    ("num_classes=3", "model argument num_classes=3 does not fit the data set "
                      "fashion-mnist-sample: it has 10 classes"),
    ("in_channels=3", "model argument in_channels=3 does not fit the data set "
                      "fashion-mnist-sample: it has 1 channels"),
    ("input_size=32", "model argument input_size=32 does not fit the data set "
                      "fashion-mnist-sample: its images are 28x28"),
    # 36 TB of weights: NumPy refuses at once (no rlimit needed); was a MemoryError traceback
    ("width=1000000000000", "model 'simple_cnn' with arguments {'num_classes': 10, "
                            "'in_channels': 1, 'input_size': 28, 'width': 1000000000000, "
                            "'hidden': 16} does not fit in memory (Unable to allocate"),
])
def test_model_arguments_that_do_not_fit_the_data_fail_before_the_folder(tmp_path, arg,
                                                                         expect):
    """Item 8: --model-arg num_classes=3 on a 10-class set failed at step 1, after the run
    folder was made (a dead end)."""
    code, _, err = call(["train", *BASE, "--limit", "100", "--model-arg", arg,
                         "--out", tmp_path / "r"])
    assert code == 1 and expect in last_line(err)
    assert not (tmp_path / "r").exists()


def test_a_model_whose_output_does_not_fit_is_refused_before_the_folder(tmp_path,
                                                                        monkeypatch):
    """The forward probe: a model built with arguments the explicit checks do not know."""
    real = fbrun.build_model

    def wrong_head(name, kwargs):
        return real(name, {**kwargs, "num_classes": 4})

    monkeypatch.setattr(fbrun, "build_model", wrong_head)
    code, _, err = call(["train", *BASE, "--limit", "100", "--out", tmp_path / "r"])
    assert code == 1
    assert "gives outputs of shape (1, 4) for one 1x28x28 image of fashion-mnist-sample; " \
           "the task classify needs (1, 10)" in last_line(err)
    assert not (tmp_path / "r").exists()


def test_resume_with_fewer_epochs_is_refused_and_the_record_kept(finished):
    """Item 11: --resume <finished 2-epoch run> --epochs 1 exited 0 and rewrote config.json
    (epochs 1, train_seconds 0.0)."""
    before = {p.name: p.read_bytes() for p in finished.iterdir() if p.is_file()}
    code, _, err = call(["train", "--resume", finished, "--epochs", "1", "--no-progress"])
    assert code == 1
    assert f"--epochs 1: the run {finished} has already trained 2 epochs; --resume continues " \
           f"a run, it cannot shorten it (give --epochs 3 or more" in last_line(err)
    code, _, err = call(["train", "--resume", finished, "--no-progress"])
    assert code == 1
    assert f"the run {finished} has completed its 2 epochs; there is nothing to resume" in \
        last_line(err)
    after = {p.name: p.read_bytes() for p in finished.iterdir() if p.is_file()}
    assert after == before


def test_resume_trims_metrics_and_removes_stale_temp_files(finished, tmp_path):
    """Item 9: a SIGKILL during a checkpoint save left a metrics row for an epoch whose
    checkpoint was never written (epoch 3 then appeared twice) and a temp file forever."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished, run)
    with open(run / "metrics.csv", "a", newline="") as f:
        f.write("3,9,9,9,9,9,9,9\n")
    stale = [run / "checkpoints" / ".last-0123456789abcdef.safetensors.k3_x9q1z.tmp",
             run / "checkpoints" / ".last.json.a1b2c3d4.tmp", run / ".model.json.zz9_zz9z.tmp"]
    for p in stale:
        p.write_bytes(b"\0" * 1000)
    keep = run / "notes.tmp"  # not one of ours
    keep.write_text("mine")
    config = json.loads((run / "config.json").read_text())
    config["results"]["train_seconds"] = 1000.0  # the record of what ran before
    (run / "config.json").write_text(json.dumps(config))
    code, _, err = call(["train", "--resume", run, "--epochs", "3", "--no-progress"])
    assert code == 0, err
    assert epochs_logged(run) == [1, 2, 3]
    assert "had rows after epoch 2, the epoch being resumed from" in err
    assert "removed 3 temp file(s) left by an interrupted save" in err
    assert not any(p.exists() for p in stale) and keep.exists()
    assert load_checkpoint(run / "checkpoints" / "last")["epoch"] == 3
    results = json.loads((run / "config.json").read_text())["results"]
    assert results["epochs_completed"] == 3 and 1000 <= results["train_seconds"] < 1100


@pytest.mark.parametrize("kwargs, expect", [
    (dict(lr=float("inf")), "--lr must be a finite number, got inf"),
    (dict(lr=float("nan")), "--lr must be a finite number, got nan"),
    (dict(lr=0.0), "--lr must be > 0, got 0.0"),
    (dict(momentum=float("inf")), "--momentum must be a finite number"),
    (dict(seed=-1), "--seed must be an int >= 0, got -1"),
    (dict(out=""), "--out must name a folder, got an empty string"),
])
def test_train_refuses_what_the_command_line_refuses(tmp_path, monkeypatch, kwargs, expect):
    """Item 13 for fbrun.train called from Python: the same checks before any folder."""
    monkeypatch.chdir(tmp_path)
    args = dict(model="simple_cnn", dataset="fashion-mnist-sample", limit=50,
                model_args={"width": 4, "hidden": 16}, progress=False, out=tmp_path / "r")
    with pytest.raises(ValueError, match=expect):
        fbrun.train(**{**args, **kwargs}, log=lambda m: None, echo=lambda m: None)
    assert list(tmp_path.iterdir()) == []
