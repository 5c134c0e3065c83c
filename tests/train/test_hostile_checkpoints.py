"""Hostile and damaged run folders (issue 15, items 2, 3 and 13): every reader of a checkpoint
or a run config answers with one line naming the file and the field, never a traceback, a
hang or an unbounded read.

The run folder is a real one (``filterbank train`` on the embedded sample, tiny model); each
case copies it and breaks one thing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from filterbank import cli
from filterbank.train.checkpoint import CheckpointError, read_checkpoint
from filterbank.train.runs import find_run, load_run

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs, /dev/zero, rlimits")


@pytest.fixture
def run(run_dir, tmp_path) -> Path:
    """A fresh copy of the run folder to break."""
    return Path(shutil.copytree(run_dir, tmp_path / "run", symlinks=True))


def edit_json(path: Path, change) -> None:
    obj = json.loads(path.read_text())
    change(obj)
    path.write_text(json.dumps(obj))


def tensor_file(sidecar: Path) -> Path:
    return sidecar.with_name(json.loads(sidecar.read_text())["tensor_file"])


def evaluate_cli(run: Path, capsys) -> str:
    """``filterbank evaluate RUN``: must fail with exactly one line on stderr."""
    rc = cli.main(["evaluate", str(run), "--limit", "8"])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert err.count("\n") == 1 and err.startswith("filterbank: error: "), err
    assert "Traceback" not in err
    return err


# ------------------------------------------------- item 3: broken metadata in model.json
def pop_config(key):
    return lambda m: m["extra"]["config"].pop(key)


def deep_history(depth):
    def change(m):
        m["history"]["loss"] = json.loads("[" * depth + "]" * depth)
    return change


def deep_text(run):  # 100,000 levels: json.loads itself would raise RecursionError
    side = run / "model.json"
    text = side.read_text().replace('"history": {', '"deep": ' + "[" * 100_000
                                    + "]" * 100_000 + ', "history": {', 1)
    assert '"deep"' in text
    side.write_text(text)


MODEL_JSON = {
    # case: (change to model.json, field named in the message)
    "rng is a list": (lambda m: m.__setitem__("rng", []), "rng: expected an object"),
    "rng.global damaged": (lambda m: m["rng"].__setitem__(
        "global", {"bit_generator": "PCG64", "state": 5}), "rng.global: not a valid PCG64"),
    "no model_kwargs": (pop_config("model_kwargs"), "extra.config.model_kwargs: missing"),
    "no preprocessing": (pop_config("preprocessing"), "extra.config.preprocessing: missing"),
    "no classes": (pop_config("classes"), "extra.config.classes: missing"),
    "no requested_dataset": (pop_config("requested_dataset"),
                             "extra.config.requested_dataset: missing"),
    "model is 5": (lambda m: m["extra"]["config"].__setitem__("model", 5),
                   r"extra.config.model: expected a string \(a zoo model name\), got 5"),
    "size of 3": (lambda m: m["extra"]["config"]["preprocessing"].__setitem__("size", [1, 2, 3]),
                  r"extra.config.preprocessing.size: expected a list of 2"),
    "mean per channel": (lambda m: m["extra"]["config"]["preprocessing"].__setitem__(
        "mean", [0.1, 0.2]), r"extra.config.preprocessing.mean: expected 1 number"),
    "epoch a string": (lambda m: m.__setitem__("epoch", "1"), "epoch: expected an integer"),
    "no tensor_sha256": (lambda m: m.pop("tensor_sha256"), "tensor_sha256: missing"),
    "model keys": (lambda m: m["model"].__setitem__("keys", []), "model.keys: expected an obj"),
    "history a tuple": (lambda m: m.__setitem__("history", {"__tuple__": []}),
                        "history: expected an object"),
    "history of numbers": (lambda m: m["history"].__setitem__("loss", 2.5),
                           "history.loss: expected a list"),
    "nested 150 deep": (deep_history(150), "nested deeper than 100 levels"),
    # 36 TB of weights (NumPy refuses at once): was a MemoryError traceback from evaluate
    "model_kwargs too large": (lambda m: m["extra"]["config"]["model_kwargs"].__setitem__(
        "width", 10**12), "model.json: model_kwargs: model 'simple_cnn' with arguments .*"
                          "does not fit in memory"),
}


@pytest.mark.parametrize("case", list(MODEL_JSON))
def test_broken_model_json_names_the_file_and_field(run, capsys, case):
    change, match = MODEL_JSON[case]
    edit_json(run / "model.json", change)
    with pytest.raises(CheckpointError, match=match) as info:
        load_run(run)
    assert str(run / "model.json") in str(info.value)
    err = evaluate_cli(run, capsys)
    assert "model.json" in err


def test_100000_deep_array_in_model_json(run, capsys):
    deep_text(run)
    with pytest.raises(CheckpointError, match=r"model.json: .*nested deeper than 100 levels"):
        read_checkpoint(run / "model.json")
    assert "nested deeper" in evaluate_cli(run, capsys)


# ------------------------------------------------- item 3: broken config.json for --resume
CONFIG_JSON = {
    "no training": (lambda c: c.pop("training"), r"config.json: training: missing \(expected "
                                                 r"an object of training options\)"),
    "no batch_size": (lambda c: c["training"].pop("batch_size"),
                      "config.json: training.batch_size: missing"),
    "optimizer is 5": (lambda c: c["training"].__setitem__("optimizer", 5),
                       r"config.json: training.optimizer: expected a string \(an optimizer "
                       r"name\), got 5"),
    "lr a string": (lambda c: c["training"].__setitem__("lr", "0.1"),
                    r"training.lr: expected a number, got \"0.1\" \(a string\)"),
    "classes empty": (lambda c: c.__setitem__("classes", []), "classes: expected a non-empty"),
    # values train() refuses as options but --resume took from the file unchecked
    "val_split 2": (lambda c: c["training"].__setitem__("val_split", 2),  # was StopIteration
                    r"config.json: training.val_split: expected a number in \[0, 1\), got 2"),
    "lr inf": (lambda c: c["training"].__setitem__("lr", float("inf")),
               r"config.json: training.lr: expected a finite number > 0, got Infinity"),
    "lr -1": (lambda c: c["training"].__setitem__("lr", -1),  # was "--lr must be > 0"
              r"config.json: training.lr: expected a finite number > 0, got -1"),
    "momentum nan": (lambda c: c["training"].__setitem__("momentum", float("nan")),
                     r"config.json: training.momentum: expected a finite number, got NaN"),
    "config emptied": (lambda c: c.clear(), "without a run configuration"),
}


@pytest.mark.parametrize("case", list(CONFIG_JSON))
def test_broken_config_json_names_the_file_and_field(run, capsys, case):
    change, match = CONFIG_JSON[case]
    edit_json(run / "config.json", change)
    # --resume reads the config through find_run (checkpoints/last.json embeds none)
    with pytest.raises(CheckpointError, match=match):
        find_run(run / "checkpoints" / "last.json")
    rc = cli.main(["train", "--resume", str(run), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "config.json" in err, err


def test_config_json_too_deep(run):
    (run / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CheckpointError, match="config.json: nested deeper than 100 levels"):
        find_run(run / "checkpoints" / "last.json")


# ------------------------------------------------ item 2: unbounded reads, FIFOs, devices
def sparse_tensor_file(run):  # truncate -s 8G
    os.truncate(tensor_file(run / "model.json"), 8 * 2**30)


def tensor_file_to_dev_zero(run):
    t = tensor_file(run / "model.json")
    t.unlink()
    t.symlink_to("/dev/zero")


def model_json_to_dev_zero(run):
    (run / "model.json").unlink()
    (run / "model.json").symlink_to("/dev/zero")


def fifo_tensor_file(run):
    t = tensor_file(run / "model.json")
    t.unlink()
    os.mkfifo(t)


def fifo_model_json(run):
    (run / "model.json").unlink()
    os.mkfifo(run / "model.json")


def config_json_to_dev_zero(run):  # read by --resume (checkpoints/last.json embeds no config)
    (run / "config.json").unlink()
    (run / "config.json").symlink_to("/dev/zero")


def sparse_model_json(run):
    os.truncate(run / "model.json", 8 * 2**30)


FILES = {
    "sparse 8 GiB tensor file": (sparse_tensor_file, "evaluate",
                                 "truncated or replaced: expected .* bytes .*8,589,934,592"),
    "tensor file -> /dev/zero": (tensor_file_to_dev_zero, "evaluate",
                                 "expected a regular file, got a character device"),
    "model.json -> /dev/zero": (model_json_to_dev_zero, "evaluate",
                                "model.json: expected a regular file, got a character device"),
    "FIFO tensor file": (fifo_tensor_file, "evaluate", "expected a regular file, got a FIFO"),
    "FIFO model.json": (fifo_model_json, "evaluate",
                        "model.json: expected a regular file, got a FIFO"),
    "sparse 8 GiB model.json": (sparse_model_json, "evaluate",
                                "model.json: .*8,589,934,592 bytes, more than the"),
    "config.json -> /dev/zero": (config_json_to_dev_zero, "resume",
                                 "config.json: expected a regular file, got a character"),
}

# a child with 1.5 GiB of address space and a time limit: a reader that reads the whole file
# (MemoryError) or waits on a FIFO fails the test instead of the machine. "cli": the
# command line; "load": the library (load_checkpoint), which must raise CheckpointError
CHILD = textwrap.dedent("""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (1536 * 2**20, 1536 * 2**20))
    if sys.argv[1] == "cli":
        from filterbank import cli
        sys.exit(cli.main(sys.argv[2:]))
    from filterbank.train.checkpoint import CheckpointError, load_checkpoint
    try:
        load_checkpoint(sys.argv[2])
    except CheckpointError as e:
        print("filterbank: error:", e, file=sys.stderr)
        sys.exit(1)
""")


@pytest.mark.parametrize("case, mode", [(c, "cli") for c in FILES]
                         + [(c, "load") for c in FILES if FILES[c][1] == "evaluate"])
def test_hostile_files_are_refused_before_reading(run, case, mode):
    make, command, match = FILES[case]
    make(run)
    if mode == "load":
        args = ["load", str(run / "model.json")]
    elif command == "evaluate":
        args = ["cli", "evaluate", str(run), "--limit", "8"]
    else:
        args = ["cli", "train", "--resume", str(run), "--no-progress"]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True,
                          text=True, timeout=30, env=env)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("filterbank: error: ")
    assert re.search(match, proc.stderr), proc.stderr


@pytest.mark.parametrize("name", ["model.json", "tensor file"])
def test_dangling_links_are_named(run, capsys, name):
    target = run / "model.json" if name == "model.json" else tensor_file(run / "model.json")
    target.unlink()
    target.symlink_to(run / "nowhere")
    match = "which does not exist" if name == "model.json" else "tensor file .* is missing"
    with pytest.raises(CheckpointError, match=match):
        load_run(run)
    assert re.search(match, evaluate_cli(run, capsys))


@pytest.mark.parametrize("key,value,field", [
    ("extra", [], "extra"),
    ("extra", {"schedulers": 5}, "extra.schedulers"),
    ("callbacks", [], "callbacks"),
    ("callbacks", "every state 5", "callbacks."),
])
def test_broken_resume_state_names_the_file_and_field(run, capsys, key, value, field):
    """Trainer.load_checkpoint's own parts of the sidecar (extra schedulers, callback states):
    one line naming the file and the field, never an AttributeError traceback."""
    def change(obj):
        obj[key] = ({k: 5 for k in obj[key]} if value == "every state 5" else value)

    edit_json(run / "checkpoints" / "last.json", change)
    rc = cli.main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1, err
    last = err.strip().splitlines()[-1]      # after the run's own progress lines
    assert last.startswith("filterbank: error: ") and "Traceback" not in err, err
    assert "last.json" in last and f": {field}" in last, err
