"""``filterbank.serialization``: ``save``/``load`` round trips, the file format, hostile files."""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import filterbank as fb
from filterbank import nn, optim
from filterbank.serialization import MAX_DEPTH, MAX_HEADER_BYTES, load, save


def _same(a, b):
    """Deep equality with types and dtypes."""
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, fb.Tensor):
        assert a.dtype == b.dtype and a.requires_grad == b.requires_grad
        np.testing.assert_array_equal(a.data, b.data)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b)
    else:
        assert a == b


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int64, np.int32,
                                   np.uint8, np.bool_])
def test_array_dtypes_round_trip(tmp_path, dtype):
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((3, 4, 2)) * 5).astype(dtype)
    save({"a": a, "t": fb.Tensor(a, dtype=a.dtype), "zero_d": a[0, 0, 0].reshape(()),
          "empty": a[:0]}, tmp_path / "x.safetensors")
    back = load(tmp_path / "x.safetensors")
    _same(back["a"], a)
    assert isinstance(back["t"], fb.Tensor) and back["t"].dtype == dtype
    np.testing.assert_array_equal(back["t"].data, a)
    assert back["zero_d"].shape == () and back["empty"].shape == (0, 4, 2)


def test_nested_structure_round_trip(tmp_path):
    obj = {
        "weights": [fb.ones(2, 2), fb.tensor([1.0, 2.0], requires_grad=True)],
        "pair": (np.arange(3), "text", None),
        "flags": {"on": True, "off": False},
        "numbers": [1, -2, 3.5, float("inf"), 2**70, np.float32(0.25), np.int64(-7)],
        "int_keys": {0: np.zeros(1), 5: "five", (1, 2): "tuple key"},
        "dunder": {"__tensor__": "not a tensor"},
        "nested": {"a": {"b": {"c": [np.eye(2, dtype=np.float64)]}}},
        "slash/name": np.array([1, 2], np.int16),
        "slash": {"name": np.array([3], np.int16)},  # same derived array name as above
        "noncontig": np.arange(12.0).reshape(3, 4).T,
        "nan": float("nan"),
        "empty": {}, "empty_list": [],
    }
    save(obj, tmp_path / "nested.safetensors")
    back = load(tmp_path / "nested.safetensors")
    expect = dict(obj, noncontig=np.ascontiguousarray(obj["noncontig"]))
    _same(back, expect)
    assert back["weights"][1].requires_grad and not back["weights"][0].requires_grad
    assert type(back["numbers"][5]) is np.float32 and type(back["numbers"][6]) is np.int64


def test_state_dicts_and_optimizer_round_trip(tmp_path):
    fb.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 4 * 4, 3))
    opt = optim.Adam(model.parameters(), lr=1e-2)
    x, y = fb.randn(5, 1, 6, 6), fb.tensor(np.array([0, 1, 2, 0, 1]))
    for _ in range(2):
        opt.zero_grad()
        fb.functional.cross_entropy(model(x), y).backward()
        opt.step()
    path = tmp_path / "ckpt.safetensors"
    save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 2}, path)
    back = load(path)
    assert back["epoch"] == 2
    _same(dict(back["model"]), dict(model.state_dict()))
    assert back["model"]["1.num_batches_tracked"].dtype == model.state_dict()[
        "1.num_batches_tracked"].dtype
    # a fresh model and optimizer continue exactly as the originals
    fb.manual_seed(1)
    model2 = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                           nn.Linear(4 * 4 * 4, 3))
    opt2 = optim.Adam(model2.parameters(), lr=1e-2)
    model2.load_state_dict(back["model"])
    opt2.load_state_dict(back["optimizer"])
    for m, o in ((model, opt), (model2, opt2)):
        o.zero_grad()
        fb.functional.cross_entropy(m(x), y).backward()
        o.step()
    for (k, a), b in zip(model.state_dict().items(), model2.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=k)


def test_file_is_plain_safetensors_named_by_keys(tmp_path):
    import safetensors.numpy

    model = nn.Linear(3, 2)
    path = save(model.state_dict(), tmp_path / "lin.safetensors")
    arrays = safetensors.numpy.load_file(str(path))
    assert set(arrays) == {"weight", "bias"}
    np.testing.assert_array_equal(arrays["weight"], model.weight.data)


def test_parameter_comes_back_as_parameter(tmp_path):
    p = nn.Parameter(fb.ones(2))
    save([p], tmp_path / "p.safetensors")
    (q,) = load(tmp_path / "p.safetensors")
    assert isinstance(q, nn.Parameter) and q.requires_grad


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "a.safetensors"
    save({"v": np.arange(3)}, path)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        save({"v": np.arange(5)}, path)
    monkeypatch.undo()
    np.testing.assert_array_equal(load(path)["v"], np.arange(3))  # the old file, complete
    assert [p.name for p in tmp_path.iterdir()] == ["a.safetensors"]  # no temp file left


@pytest.mark.parametrize("bad", [object(), np.array(["a", "b"]), np.zeros(2, np.complex64),
                                 {1: {2, 3}}, np.array([1], dtype=object)])
def test_unsupported_objects_raise_type_error(tmp_path, bad):
    with pytest.raises(TypeError, match="save: cannot store"):
        save({"x": bad}, tmp_path / "bad.safetensors")
    assert not (tmp_path / "bad.safetensors").exists()


# ------------------------------------------------------------------------ hostile files
def _header_file(path, header: dict, data: bytes = b"", length: int | None = None):
    text = json.dumps(header).encode()
    n = len(text) if length is None else length
    path.write_bytes(struct.pack("<Q", n) + text + data)
    return path


def _raw(path, data: bytes):
    path.write_bytes(data)
    return path


def _meta(structure) -> dict:
    return {"format": "filterbank-save", "version": "1", "structure": json.dumps(structure)}


HOSTILE = {
    "empty file": lambda p: _raw(p, b""),
    "random bytes": lambda p: _raw(p, np.random.default_rng(0).bytes(64)),
    "huge header length": lambda p: _header_file(p, {}, length=2**62),
    "header over the limit": lambda p: _header_file(p, {}, b"\0" * 16,
                                                    length=MAX_HEADER_BYTES + 1),
    "header not json": lambda p: _raw(p, struct.pack("<Q", 4) + b"{{{{"),
    "huge shape": lambda p: _header_file(p, {"__metadata__": _meta({"__tensor__": "a"}),
                                             "a": {"dtype": "F32", "shape": [2**40, 2**40],
                                                   "data_offsets": [0, 8]}}, b"\0" * 8),
    "range past the end": lambda p: _header_file(p, {"__metadata__": _meta({"__tensor__": "a"}),
                                                     "a": {"dtype": "F32", "shape": [4],
                                                           "data_offsets": [0, 16]}}, b"\0" * 8),
    "negative offset": lambda p: _header_file(p, {"a": {"dtype": "F32", "shape": [1],
                                                        "data_offsets": [-4, 0]}}, b"\0" * 4),
    "object dtype": lambda p: _header_file(p, {"a": {"dtype": "O", "shape": [1],
                                                     "data_offsets": [0, 8]}}, b"\0" * 8),
    "plain safetensors": lambda p: _header_file(p, {"a": {"dtype": "U8", "shape": [1],
                                                          "data_offsets": [0, 1]}}, b"\0"),
    "future version": lambda p: _header_file(p, {"__metadata__": dict(_meta(1), version="9")}),
    "missing array": lambda p: _header_file(p, {"__metadata__": _meta({"__tensor__": "nope"})}),
    "object scalar": lambda p: _header_file(p, {"__metadata__": _meta(
        {"__scalar__": "|O", "value": 1})}),
    "bad scalar value": lambda p: _header_file(p, {"__metadata__": _meta(
        {"__scalar__": "<f4", "value": {"x": 1}})}),
    "unhashable key": lambda p: _header_file(p, {"__metadata__": _meta(
        {"__items__": [[{"a": 1}, 2]]})}),
    "bad tensor class": lambda p: _header_file(
        p, {"__metadata__": _meta({"__tensor__": "a", "tensor": "os.system"}),
            "a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}, b"\0"),
    "deep nesting": lambda p: _header_file(p, {"__metadata__": {
        "format": "filterbank-save", "version": "1", "structure": "[" * 100000 + "]" * 100000}}),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_files_raise_value_error(tmp_path, case):
    path = HOSTILE[case](tmp_path / "evil.safetensors")
    with pytest.raises(ValueError, match="load: .*evil.safetensors"):
        load(path)


def test_truncated_file(tmp_path):
    path = save({"w": np.arange(1000, dtype=np.float64)}, tmp_path / "t.safetensors")
    blob = path.read_bytes()
    path.write_bytes(blob[:-100])
    with pytest.raises(ValueError, match="truncated"):
        load(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load(tmp_path / "none.safetensors")


def test_sizes_are_checked_before_reading(tmp_path):
    path = _header_file(tmp_path / "h.safetensors", {}, length=1000)
    with pytest.raises(ValueError, match="header claims 1,000 bytes, the file has 2 after"):
        load(path)
    path = HOSTILE["huge shape"](tmp_path / "s.safetensors")
    with pytest.raises(ValueError, match=r"shape \[1099511627776, 1099511627776\] needs"):
        load(path)


def test_deep_structures_are_refused_on_save_and_load(tmp_path):
    deep = []
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    with pytest.raises(ValueError, match=f"save: the structure nests deeper than {MAX_DEPTH}"):
        save(deep, tmp_path / "deep.safetensors")
    assert not (tmp_path / "deep.safetensors").exists()
    # 150 levels: json.loads copes, the decoder's recursion would not be the judge
    path = _header_file(tmp_path / "d.safetensors", {"__metadata__": _meta(
        json.loads("[" * 150 + "]" * 150))})
    with pytest.raises(ValueError, match=r"load: .*d.safetensors: its structure: nested "
                                         r"deeper than 100 levels"):
        load(path)


def test_bytes_beyond_the_arrays_are_refused_unread(tmp_path):
    path = save({"w": np.arange(4.0)}, tmp_path / "t.safetensors")
    with open(path, "ab") as f:
        f.write(b"\0" * 10)
    with pytest.raises(ValueError, match=r"its arrays end at byte 32 of the 42 after"):
        load(path)


# ------------------------------------------ files that are not files: no hang, no blow-up
def _sparse(path):
    save({"w": np.arange(4.0)}, path)
    os.truncate(path, 8 * 2**30)  # truncate -s 8G: a valid header, 8 GiB of holes after it


def _sparse_declared(path):
    """A header declaring an 8 GiB array over 8 GiB of holes: was a bare MemoryError."""
    n = 8 * 2**30
    structure = json.dumps({"__tensor__": "w"})
    header = json.dumps({"__metadata__": {"format": "filterbank-save", "version": "1",
                                          "structure": structure},
                         "w": {"dtype": "U8", "shape": [n], "data_offsets": [0, n]}}).encode()
    with open(path, "wb") as f:
        f.write(len(header).to_bytes(8, "little") + header)
        f.truncate(8 + len(header) + n)


def _dev_zero(path):
    path.symlink_to("/dev/zero")


def _fifo(path):
    os.mkfifo(path)


LOAD_CHILD = textwrap.dedent("""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (1536 * 2**20, 1536 * 2**20))
    from filterbank.serialization import load
    try:
        load(sys.argv[1])
    except ValueError as e:
        print(e, file=sys.stderr)
        sys.exit(1)
""")


@pytest.mark.skipif(sys.platform == "win32", reason="FIFOs, /dev/zero, rlimits")
@pytest.mark.parametrize("make, match", [
    (_sparse, r"its arrays end at byte 32 of the 8,589,934,\d{3} after the header"),
    (_sparse_declared, r"its arrays take 8,589,934,592 bytes, more than the [\d,]+ bytes of "
                       r"memory available"),
    (_dev_zero, r"expected a regular file, got a character device \(a link to /dev/zero\)"),
    (_fifo, r"expected a regular file, got a FIFO"),
], ids=["sparse 8 GiB", "sparse 8 GiB declared", "link to /dev/zero", "FIFO"])
def test_special_files_are_refused_before_reading(tmp_path, make, match):
    path = tmp_path / "x.safetensors"
    make(path)
    proc = subprocess.run([sys.executable, "-c", LOAD_CHILD, str(path)], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert proc.stderr.startswith(f"load: {path}: ") and proc.stderr.count("\n") == 1
    assert re.search(match, proc.stderr), proc.stderr


# ------------------------------------------ a real crash: SIGKILL half-way through a write
SAVE_CHILD = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    from filterbank.serialization import save

    path = sys.argv[1]
    save({"w": np.arange(2**21, dtype=np.float32), "step": 1}, path)  # 8 MiB

    real_fdopen = os.fdopen
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
    def fdopen(fd, mode="r", *args, **kwargs):
        f = real_fdopen(fd, mode, *args, **kwargs)
        return HalfWrite(f) if "w" in mode else f
    os.fdopen = fdopen
    save({"w": -np.arange(2**21, dtype=np.float32), "step": 2}, path)
""")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_sigkill_in_the_middle_of_a_save_keeps_the_previous_file(tmp_path):
    path = tmp_path / "state.safetensors"
    proc = subprocess.Popen([sys.executable, "-c", SAVE_CHILD, str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        assert sel.select(timeout=60), "the child never reached the write"
        assert proc.stdout.readline() == "half\n", proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    back = load(path)  # the previous file, complete
    assert back["step"] == 1
    np.testing.assert_array_equal(back["w"], np.arange(2**21, dtype=np.float32))
    temps = [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    assert len(temps) == 1 and (tmp_path / temps[0]).stat().st_size > 0  # killed mid-file
