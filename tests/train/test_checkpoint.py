"""Checkpoints: exact round trip, tagged JSON tree, validation before modification, and a crash
at every point of a save leaving the previous checkpoint intact."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import safetensors.numpy

import filterbank as fb
from filterbank import nn, optim
from filterbank.train import checkpoint as ck
from filterbank.train.checkpoint import (
    CheckpointError,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)


def make(seed=0, hidden=8):
    fb.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                          nn.Linear(hidden, 3))
    opt = optim.Adam(model.parameters(), lr=1e-2)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    return model, opt, sched


def train(model, opt, sched, steps, seed=1):
    g = np.random.default_rng(seed)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(steps):
        x = fb.tensor(g.standard_normal((16, 4)).astype(np.float32))
        y = fb.tensor(g.integers(0, 3, 16))
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        sched.step()


def weights(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype, k
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_round_trip_continues_bit_identically(tmp_path):
    model, opt, sched = make()
    train(model, opt, sched, 3)
    fb.randn(3)
    lr_at_save = sched.get_last_lr()
    path = save_checkpoint(tmp_path / "ck", model, opt, sched, epoch=2, global_step=3,
                           history={"loss": [1.0, 0.5]}, extra={"note": "hi", "k": (1, 2)})
    assert path == tmp_path / "ck.json"
    train(model, opt, sched, 2, seed=5)
    want, want_rand = weights(model), fb.randn(4).numpy()

    model2, opt2, sched2 = make(seed=9)
    meta = load_checkpoint(tmp_path / "ck.json", model2, opt2, sched2)
    fb.random.set_rng_state(meta["rng"]["global"])
    assert meta["epoch"] == 2 and meta["global_step"] == 3
    assert meta["history"] == {"loss": [1.0, 0.5]}
    assert meta["extra"] == {"note": "hi", "k": (1, 2)}
    assert sched2.get_last_lr() == lr_at_save == [0.005]  # fresh: 0.01
    train(model2, opt2, sched2, 2, seed=5)
    assert_same(weights(model2), want)
    np.testing.assert_array_equal(fb.randn(4).numpy(), want_rand)
    for st in opt2.state.values():
        for v in st.values():
            if isinstance(v, np.ndarray):
                assert v.dtype == np.float32


def test_tree_encoding_keeps_types():
    tree = {"state": {0: {"step": 3, "buf": np.arange(3, dtype=np.float32)},
                      1: {"s": np.float32(0.1), "i": np.int64(7)}},
            "groups": [{"betas": (0.9, 0.999), "params": [0, 1]}],
            "nan": float("nan"), "none": None, "__weird": True, "flag": np.bool_(True)}
    tensors = {}
    enc = ck._encode(tree, "t", tensors)
    back = ck._decode(json.loads(json.dumps(enc)), tensors, "test")
    assert list(back["state"]) == [0, 1]
    np.testing.assert_array_equal(back["state"][0]["buf"], tree["state"][0]["buf"])
    assert type(back["state"][1]["s"]) is np.float32 and back["state"][1]["s"] == np.float32(0.1)
    assert type(back["state"][1]["i"]) is np.int64
    assert back["groups"][0]["betas"] == (0.9, 0.999)
    assert np.isnan(back["nan"]) and back["none"] is None and back["__weird"] is True
    assert type(back["flag"]) is np.bool_
    with pytest.raises(CheckpointError, match="cannot store an object of type object"):
        ck._encode({"x": object()}, "t", {})


def test_files_written_and_old_tensor_file_removed(tmp_path):
    model, opt, sched = make()
    save_checkpoint(tmp_path / "last", model, opt)
    first = sorted(os.listdir(tmp_path))
    train(model, opt, sched, 1)
    save_checkpoint(tmp_path / "last.safetensors", model, opt)  # suffix ignored
    files = sorted(os.listdir(tmp_path))
    assert len(first) == len(files) == 2 and first != files
    assert "last.json" in files
    meta = json.loads((tmp_path / "last.json").read_text())
    assert meta["format"] == "filterbank-checkpoint" and meta["format_version"] == 1
    assert meta["tensor_file"] in files
    assert meta["tensor_bytes"] == (tmp_path / meta["tensor_file"]).stat().st_size
    # the tensor file's own path names the same checkpoint
    meta2, arrays = read_checkpoint(tmp_path / meta["tensor_file"])
    assert meta2 == meta and "model/0.weight" in arrays


# ------------------------------------------------------------- crash in the middle
class Crash(Exception):
    pass


def crash_on_call(monkeypatch, target, attr, n):
    """Make ``target.attr`` raise on its n-th call (1-based)."""
    real = getattr(target, attr)
    calls = {"n": 0}

    def wrapper(*a, **k):
        calls["n"] += 1
        if calls["n"] == n:
            raise Crash(f"simulated crash in {attr} call {n}")
        return real(*a, **k)

    monkeypatch.setattr(target, attr, wrapper)


CRASHES = [
    ("serialise", lambda mp: crash_on_call(mp, safetensors.numpy, "save", 1)),
    ("fsync-tensors", lambda mp: crash_on_call(mp, os, "fsync", 1)),
    ("replace-tensors", lambda mp: crash_on_call(mp, os, "replace", 1)),
    ("write-sidecar", lambda mp: crash_on_call(mp, json, "dumps", 1)),
    ("fsync-sidecar", lambda mp: crash_on_call(mp, os, "fsync", 3)),  # 2nd is the dir fsync
    ("replace-sidecar", lambda mp: crash_on_call(mp, os, "replace", 2)),
]


@pytest.mark.parametrize("name, inject", CRASHES, ids=[c[0] for c in CRASHES])
def test_crash_mid_save_keeps_previous_checkpoint(tmp_path, monkeypatch, name, inject):
    model, opt, sched = make()
    train(model, opt, sched, 2)
    save_checkpoint(tmp_path / "last", model, opt, sched, epoch=1)
    good = weights(model)
    train(model, opt, sched, 2, seed=3)
    with monkeypatch.context() as mp:
        inject(mp)
        with pytest.raises(Crash):
            save_checkpoint(tmp_path / "last", model, opt, sched, epoch=2)
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]  # temp files cleaned
    fresh, fopt, fsched = make(seed=4)
    meta = load_checkpoint(tmp_path / "last", fresh, fopt, fsched)
    assert meta["epoch"] == 1
    assert_same(weights(fresh), good)
    # and the next save works and cleans up the orphan tensor file
    save_checkpoint(tmp_path / "last", model, opt, sched, epoch=2)
    assert len(os.listdir(tmp_path)) == 2
    assert load_checkpoint(tmp_path / "last", fresh)["epoch"] == 2


# ------------------------------------------ a real crash: SIGKILL half-way through a write
# The child saves epoch 1, changes the weights, then saves epoch 2 with the n-th file write of
# that save stopped half-way (half the bytes written and fsynced, then it waits to be killed).
# Atomic writes leave the epoch-1 pair loadable; writing in place would leave half a file.
KILL_CHILD = textwrap.dedent("""
    import os, sys, time
    import filterbank as fb
    from filterbank import nn
    from filterbank.train.checkpoint import save_checkpoint

    folder, nth = sys.argv[1], int(sys.argv[2])
    fb.manual_seed(0)
    model = nn.Linear(1024, 2048)  # 8 MiB of weights
    save_checkpoint(os.path.join(folder, "last"), model, epoch=1)
    model.weight.data += 1.0

    class HalfWrite:
        def __init__(self, f):
            self.f = f
        def write(self, data):
            self.f.write(bytes(data[:len(data) // 2]))
            self.f.flush()
            os.fsync(self.f.fileno())
            print("half", flush=True)
            time.sleep(120)
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            self.f.close()
        def __getattr__(self, name):
            return getattr(self.f, name)

    real_fdopen, calls = os.fdopen, [0]
    def fdopen(fd, mode="r", *args, **kwargs):
        f = real_fdopen(fd, mode, *args, **kwargs)
        if "w" in mode:
            calls[0] += 1
            if calls[0] == nth:
                return HalfWrite(f)
        return f
    os.fdopen = fdopen
    save_checkpoint(os.path.join(folder, "last"), model, epoch=2)
    print("finished", flush=True)
""")


def kill_half_way(child: str, args: list[str]) -> None:
    """Run ``child``; when it prints "half", SIGKILL it."""
    proc = subprocess.Popen([sys.executable, "-c", child, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        assert sel.select(timeout=60), "the child never reached the write"
        line = proc.stdout.readline()
        assert line == "half\n", (line, proc.stderr.read() if proc.poll() is not None else "")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
@pytest.mark.parametrize("nth", [1, 2], ids=["tensor-file", "sidecar"])
def test_sigkill_in_the_middle_of_writing_keeps_previous_checkpoint(tmp_path, nth):
    kill_half_way(KILL_CHILD, [str(tmp_path), str(nth)])
    fb.manual_seed(0)
    expected = nn.Linear(1024, 2048)
    fresh = nn.Linear(1024, 2048)
    assert load_checkpoint(tmp_path / "last", fresh)["epoch"] == 1
    assert_same(weights(fresh), weights(expected))
    temps = [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    assert len(temps) == 1 and (tmp_path / temps[0]).stat().st_size > 0  # killed mid-file


# ----------------------------------------------------------------- invalid files
def saved(tmp_path):
    model, opt, sched = make()
    save_checkpoint(tmp_path / "ck", model, opt, sched)
    meta = json.loads((tmp_path / "ck.json").read_text())
    return tmp_path / "ck.json", tmp_path / meta["tensor_file"], meta


def corrupt_truncate(tmp_path):
    side, tfile, _ = saved(tmp_path)
    tfile.write_bytes(tfile.read_bytes()[:-10])
    return side, "truncated or replaced"


def corrupt_flip_byte(tmp_path):
    side, tfile, _ = saved(tmp_path)
    b = bytearray(tfile.read_bytes())
    b[-1] ^= 0xFF
    tfile.write_bytes(bytes(b))
    return side, "SHA-256 differs"


def corrupt_swap_pair(tmp_path):
    side, tfile, meta = saved(tmp_path)
    other, _, _ = make(seed=5)
    blob = safetensors.numpy.save({f"model/{k}": v for k, v in other.state_dict().items()})
    tfile.write_bytes(blob)
    return side, "truncated or replaced|SHA-256 differs"


def corrupt_sidecar_garbage(tmp_path):
    side, _, _ = saved(tmp_path)
    side.write_bytes(b"\x00\x01not json")
    return side, "not a filterbank checkpoint"


def corrupt_other_json(tmp_path):
    side = tmp_path / "config.json"
    side.write_text(json.dumps({"lr": 0.1}))
    return side, r"not a filterbank checkpoint \(expected \"format\""


def corrupt_plain_safetensors(tmp_path):
    f = tmp_path / "weights.safetensors"
    f.write_bytes(safetensors.numpy.save({"w": np.zeros(3, np.float32)}))
    return f, "not a filterbank checkpoint .*sidecar weights.json is missing"


def corrupt_missing_tensor_file(tmp_path):
    side, tfile, _ = saved(tmp_path)
    tfile.unlink()
    return side, "tensor file .* is missing"


def corrupt_future_version(tmp_path):
    side, _, meta = saved(tmp_path)
    meta["format_version"] = 99
    side.write_text(json.dumps(meta))
    return side, "format version 99 is not supported"


def corrupt_path_escape(tmp_path):
    side, _, meta = saved(tmp_path)
    meta["tensor_file"] = "../elsewhere.safetensors"
    side.write_text(json.dumps(meta))
    return side, "tensor_file must be a file name in the same folder"


CORRUPTIONS = [corrupt_truncate, corrupt_flip_byte, corrupt_swap_pair, corrupt_sidecar_garbage,
               corrupt_other_json, corrupt_plain_safetensors, corrupt_missing_tensor_file,
               corrupt_future_version, corrupt_path_escape]


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda f: f.__name__[8:])
def test_invalid_files_raise_clear_errors_and_leave_model_unchanged(tmp_path, corrupt):
    path, match = corrupt(tmp_path)
    model, opt, sched = make(seed=7)
    before = weights(model)
    with pytest.raises(CheckpointError, match=match) as info:
        load_checkpoint(path, model, opt, sched)
    assert path.name.split(".")[0] in str(info.value)  # names the file
    assert_same(weights(model), before)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint found"):
        load_checkpoint(tmp_path / "nothing", make()[0])


@pytest.mark.parametrize("other, match", [
    (lambda: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)),
     r"does not fit the Sequential given: missing keys .*unexpected keys"),
    (lambda: make(hidden=5)[0], r"shape mismatches 0.weight: model \(5, 4\), checkpoint \(8, 4\)"),
])
def test_checkpoint_of_another_model(tmp_path, other, match):
    model, opt, sched = make()
    save_checkpoint(tmp_path / "ck", model, opt, sched)
    target = other()
    before = weights(target)
    with pytest.raises(CheckpointError, match=match) as info:
        load_checkpoint(tmp_path / "ck", target)
    assert "ck.json" in str(info.value)
    assert_same(weights(target), before)


def test_optimizer_mismatch_is_detected_before_the_model_changes(tmp_path):
    model, opt, sched = make()
    train(model, opt, sched, 1)
    save_checkpoint(tmp_path / "ck", model, opt, sched)
    fresh, _, _ = make(seed=3)
    before = weights(fresh)
    two_groups = optim.SGD([{"params": list(fresh.parameters())[:2]},
                            {"params": list(fresh.parameters())[2:]}], lr=0.1)
    with pytest.raises(CheckpointError, match=r"parameter groups of sizes \[6\].* \[2, 4\]"):
        load_checkpoint(tmp_path / "ck", fresh, two_groups)
    assert_same(weights(fresh), before)
    save_checkpoint(tmp_path / "bare", fresh)
    with pytest.raises(CheckpointError, match="holds no optimizer state"):
        load_checkpoint(tmp_path / "bare", fresh, opt)


def test_failure_while_applying_rolls_back(tmp_path):
    model, opt, sched = make()
    train(model, opt, sched, 1)
    save_checkpoint(tmp_path / "ck", model, opt, sched)
    fresh, fopt, fsched = make(seed=3)
    before = weights(fresh)

    def broken(state):
        raise RuntimeError("scheduler refuses")

    fsched.load_state_dict = broken
    with pytest.raises(CheckpointError, match="could not be applied .*scheduler refuses"):
        load_checkpoint(tmp_path / "ck", fresh, fopt, fsched)
    assert_same(weights(fresh), before)
    assert fopt.state == {}
