"""Fuzzing the checkpoint reader (JSON sidecar + safetensors) and ``fb.load`` (issue 15, "Done
means"): random truncations, bit flips and header mutations of real files never raise
anything but the documented errors (:class:`CheckpointError`; ``ValueError`` for ``fb.load``),
and a checkpoint that fails leaves the model, optimizer and scheduler as they were.

A mutated tensor file is also tried with the sidecar's size and SHA-256 updated to match, so
the safetensors header checks are reached and not just the hash.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import filterbank as fb
from filterbank import nn, optim
from filterbank.serialization import load, save
from filterbank.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from filterbank.train.runs import find_run

FUZZ = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def make(seed=0):
    fb.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
    opt = optim.Adam(model.parameters(), lr=1e-2)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    return model, opt, sched


CONFIG = {
    "format": "filterbank-run", "version": 1, "model": "simple_cnn",
    "model_kwargs": {"num_classes": 3, "in_channels": 1, "input_size": 8, "width": 2},
    "dataset": "x", "requested_dataset": "x", "classes": ["a", "b", "c"],
    "preprocessing": {"channels": 1, "size": [8, 8], "mean": [0.5], "std": [0.25]},
    "training": {"epochs": 1, "batch_size": 4, "optimizer": "adam", "lr": 0.01,
                 "momentum": 0.9, "weight_decay": None, "schedule": "none", "augment": [],
                 "seed": 0, "val_split": 0.1, "limit": None, "image_size": None},
}


def _checkpoint_files() -> tuple[bytes, str, bytes]:
    """(sidecar bytes, tensor file name, tensor file bytes) of a real training state."""
    model, opt, sched = make()
    g = np.random.default_rng(0)
    for _ in range(2):
        opt.zero_grad()
        x = fb.tensor(g.standard_normal((8, 4)).astype(np.float32))
        nn.CrossEntropyLoss()(model(x), fb.tensor(g.integers(0, 3, 8))).backward()
        opt.step()
        sched.step()
    with tempfile.TemporaryDirectory() as d:
        side = save_checkpoint(Path(d) / "last", model, opt, sched, epoch=1, global_step=2,
                               history={"loss": [1.0], "accuracy": [0.5]},
                               extra={"config": CONFIG, "note": (1, np.float32(2.5))})
        meta = json.loads(side.read_text())
        return side.read_bytes(), meta["tensor_file"], (Path(d) / meta["tensor_file"]).read_bytes()


def _saved_file() -> bytes:
    """An ``fb.save`` file of a state dict and tagged types (tuple, NumPy scalar, int keys)."""
    with tempfile.TemporaryDirectory() as d:
        return save({"model": make()[0].state_dict(), "step": 3,
                     "pair": (1, [np.int64(2), None]), "ids": {0: np.arange(3)}},
                    Path(d) / "s.safetensors").read_bytes()


SIDECAR, TENSOR_NAME, TENSORS = _checkpoint_files()
SAVED = _saved_file()


# ------------------------------------------------------------------------------ mutations
JSON_WORDS = st.sampled_from(["__tensor__", "__tuple__", "__items__", "__scalar__", "tensor",
                              "Parameter", "state", "param_groups", "params", "dtype", "shape",
                              "data_offsets", "F32", "I64", "BF16", "O", "<f4", "|O",
                              "model/0.weight", "PCG64", "bit_generator", "format",
                              "filterbank-checkpoint", "filterbank-save", "1", ""])
SCALARS = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats()
           | st.text(max_size=6) | JSON_WORDS)
VALUES = st.recursive(SCALARS, lambda c: st.lists(c, max_size=3)
                      | st.dictionaries(st.text(max_size=4) | JSON_WORDS, c, max_size=3),
                      max_leaves=8)


def mutate_json(data, obj):
    """Walk a random path into ``obj`` and replace, delete or add something there."""
    obj = json.loads(json.dumps(obj))
    parent, key, node = None, None, obj
    for _ in range(data.draw(st.integers(0, 8))):
        if isinstance(node, dict) and node:
            k = data.draw(st.sampled_from(sorted(node)))
        elif isinstance(node, list) and node:
            k = data.draw(st.integers(0, len(node) - 1))
        else:
            break
        parent, key, node = node, k, node[k]
    action = data.draw(st.sampled_from(["replace", "delete", "add"]))
    if action == "add" and isinstance(node, dict | list):
        if isinstance(node, dict):
            node[data.draw(st.text(max_size=4) | JSON_WORDS)] = data.draw(VALUES)
        else:
            node.insert(data.draw(st.integers(0, len(node))), data.draw(VALUES))
    elif action == "delete" and parent is not None:
        del parent[key]
    elif parent is not None:
        parent[key] = data.draw(VALUES)
    else:
        obj = data.draw(VALUES)
    return obj


def mutate_bytes(data, blob: bytes) -> bytes:
    """Truncate, flip bits, or overwrite the 8-byte header length."""
    kind = data.draw(st.sampled_from(["truncate", "flip", "length"]))
    if kind == "truncate":
        return blob[:data.draw(st.integers(0, len(blob) - 1))]
    b = bytearray(blob)
    if kind == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            b[data.draw(st.integers(0, len(b) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    else:
        b[:8] = data.draw(st.integers(0, 2**64 - 1)).to_bytes(8, "little")
    return bytes(b)


def mutate_safetensors_header(data, blob: bytes) -> bytes:
    n = int.from_bytes(blob[:8], "little")
    header = mutate_json(data, json.loads(blob[8:8 + n]))
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + blob[8 + n:]


def rehash(sidecar: bytes, tensors: bytes) -> bytes:
    """The sidecar with the size and SHA-256 of ``tensors``: a forged pair."""
    meta = json.loads(sidecar)
    meta["tensor_bytes"] = len(tensors)
    meta["tensor_sha256"] = hashlib.sha256(tensors).hexdigest()
    return json.dumps(meta).encode()


# ----------------------------------------------------------------------------- the checks
def weights(*objs):
    out = []
    for obj in objs:
        state = obj.state_dict()
        out.append(json.dumps(state, default=lambda a: np.asarray(a).tolist(), sort_keys=True)
                   if not hasattr(obj, "parameters")
                   else {k: v.copy() for k, v in state.items()})
    return out


def check_checkpoint(sidecar: bytes, tensors: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "last.json").write_bytes(sidecar)
        (Path(d) / TENSOR_NAME).write_bytes(tensors)
        model, opt, sched = make(seed=5)
        before = weights(model, opt, sched)
        try:
            load_checkpoint(Path(d) / "last.json", model, opt, sched)
        except CheckpointError as e:
            assert "\n" not in str(e) or "last" in str(e).splitlines()[0]
            after = weights(model, opt, sched)
            assert after[1:] == before[1:]
            for k, v in before[0].items():
                np.testing.assert_array_equal(after[0][k], v, err_msg=k)
        try:
            find_run(Path(d) / "last.json")
        except CheckpointError:
            pass


@FUZZ
@given(st.data())
def test_fuzz_checkpoint_sidecar_json(data):
    check_checkpoint(json.dumps(mutate_json(data, json.loads(SIDECAR))).encode(), TENSORS)


@FUZZ
@given(st.data(), st.sampled_from(["sidecar", "tensors", "tensors, rehashed"]))
def test_fuzz_checkpoint_bytes(data, target):
    if target == "sidecar":
        check_checkpoint(mutate_bytes(data, SIDECAR), TENSORS)
    else:
        tensors = mutate_bytes(data, TENSORS)
        sidecar = rehash(SIDECAR, tensors) if target.endswith("rehashed") else SIDECAR
        check_checkpoint(sidecar, tensors)


@FUZZ
@given(st.data())
def test_fuzz_checkpoint_tensor_header(data):
    tensors = mutate_safetensors_header(data, TENSORS)
    check_checkpoint(rehash(SIDECAR, tensors), tensors)


def check_load(blob: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "s.safetensors"
        path.write_bytes(blob)
        try:
            load(path)
        except ValueError as e:
            assert str(e).startswith(f"load: {path}")


@FUZZ
@given(st.data())
def test_fuzz_fb_load_bytes(data):
    check_load(mutate_bytes(data, SAVED))


@FUZZ
@given(st.data(), st.booleans())
def test_fuzz_fb_load_header(data, structure):
    n = int.from_bytes(SAVED[:8], "little")
    header = json.loads(SAVED[8:8 + n])
    if structure:  # the filterbank structure inside the metadata
        meta = header["__metadata__"]
        meta["structure"] = json.dumps(mutate_json(data, json.loads(meta["structure"])))
        text = json.dumps(header).encode()
        blob = len(text).to_bytes(8, "little") + text + SAVED[8 + n:]
    else:
        blob = mutate_safetensors_header(data, SAVED)
    check_load(blob)


def test_unmutated_files_load():
    """The fuzz starts from files that load (else every example would fail early)."""
    check_checkpoint(SIDECAR, TENSORS)
    model, opt, sched = make(seed=5)
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "last.json").write_bytes(SIDECAR)
        (Path(d) / TENSOR_NAME).write_bytes(TENSORS)
        assert load_checkpoint(Path(d) / "last.json", model, opt, sched)["epoch"] == 1
        assert find_run(Path(d) / "last.json")[1]["model"] == "simple_cnn"
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "s.safetensors").write_bytes(SAVED)
        assert load(Path(d) / "s.safetensors")["step"] == 3

