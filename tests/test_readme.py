"""Every ```sh and ```python block of README.md runs as written.

Shell blocks run line by line (``\\`` continuations joined) in a scratch folder, with
``filterbank`` and ``.venv/bin/filterbank`` meaning this venv's entry point; Python blocks run
in a subprocess of this venv's Python. The data is the embedded 6,000-image Fashion-MNIST sample
(``$FILTERBANK_DATA`` and the cache point to an empty folder, so ``fashion-mnist`` falls back to
it where the full set is not installed system-wide). To keep the run short, ``train`` commands
get ``--limit 300 --epochs 1 --batch-size 32 --no-progress`` appended (later options win);
``--resume`` lines keep their ``--epochs``; ``probe`` and ``embed`` get ``--limit 1000``.
Placeholders: ``runs/<run>`` is the first run folder a README command created,
``path/to/images`` a folder of grey PNGs of mixed sizes in three classes, ``shirt.png`` and
``dir/`` images made from the sample, ``shapes.png``, ``one.png`` and ``triangle.png`` test
images of the ``shapes`` data set (as the README's Python block makes them).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```(\w+)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
ENTRY_POINTS = ("filterbank", ".venv/bin/filterbank")
#: Commands not run here, with the reason.
SKIPPED = {
    "make": "make demo installs data and trains for minutes; make test runs the whole suite, "
            "this test included",
    "serve": "filterbank serve runs until Ctrl-C; tests/test_dashboard_browser.py loads its page "
             "in Chromium",
    "mpirun": "the distributed tests (tests/distributed/) run mpirun -np 2 filterbank train "
              "--distributed",
}
QUICK = ["--limit", "300", "--epochs", "1", "--batch-size", "32", "--no-progress"]


def blocks(lang: str) -> list[str]:
    return [body for kind, body in FENCE.findall(README.read_text(encoding="utf-8"))
            if kind == lang]


def sh_commands() -> list[list[str]]:
    """The shell commands of the README, one argv per command (comments dropped)."""
    out = []
    for body in blocks("sh"):
        text = re.sub(r"\\\n\s*", " ", body)
        for line in text.splitlines():
            argv = shlex.split(line, comments=True)
            if argv:
                out.append(argv)
    return out


def test_readme_blocks_are_found_and_understood():
    commands = sh_commands()
    assert len(blocks("python")) >= 2 and len(commands) >= 8
    for argv in commands:  # every command is run below, or skipped with a reason
        assert argv[0] in ENTRY_POINTS or argv[0] in SKIPPED, argv
    assert any(a[:2] == ["filterbank", "predict"] and a[2] == "runs/<run>" for a in commands)


@pytest.fixture
def workspace(tmp_path):
    from PIL import Image

    from filterbank.data.datasets import FashionMNISTSample

    ds = FashionMNISTSample(train=False)
    Image.fromarray(ds.data[0]).save(tmp_path / "shirt.png")
    (tmp_path / "dir").mkdir()
    for i in range(1, 4):
        Image.fromarray(ds.data[i]).convert("RGB").save(tmp_path / "dir" / f"{i}.jpg")
    images = tmp_path / "path" / "to" / "images"
    for label, name in ((0, "top"), (1, "trouser"), (7, "sneaker")):
        (images / name).mkdir(parents=True)
        for i, j in enumerate(np.flatnonzero(ds.targets == label)[:30]):
            im = Image.fromarray(ds.data[j])
            (im.resize((32, 32)) if i % 3 == 0 else im).save(images / name / f"{i}.png")
    from filterbank.data.datasets import StandardShapes

    for name, kw in (("shapes.png", {}), ("one.png", {"min_objects": 1, "max_objects": 1}),
                     ("triangle.png", {"min_objects": 1, "max_objects": 1,
                                       "shapes": ("triangle",)})):
        image = StandardShapes(train=False, n=1, **kw)[0][0].transpose(1, 2, 0)
        Image.fromarray((image * 255).astype(np.uint8)).save(tmp_path / name)
    empty = tmp_path / "no-data"
    empty.mkdir()
    env = dict(os.environ, FILTERBANK_DATA=str(empty), XDG_CACHE_HOME=str(empty / "cache"),
               PYTHONWARNINGS="error")
    return tmp_path, env


def _run(argv, cwd, env, what):
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (f"README {what} failed (exit {done.returncode}):\n"
                                  f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return done


@pytest.mark.slow
def test_readme_runs_as_written(workspace):
    cwd, env = workspace
    exe = str(Path(sys.executable).parent / "filterbank")
    run_folder = None
    skipped = []
    for argv in sh_commands():
        key = argv[1] if argv[0] in ENTRY_POINTS and argv[1] in SKIPPED else argv[0]
        if key in SKIPPED:
            skipped.append((" ".join(argv[:2]), SKIPPED[key]))
            continue
        args = argv[1:]
        if "runs/<run>" in args:
            assert run_folder is not None, f"{argv}: no run folder made before this line"
            args = [str(run_folder) if a == "runs/<run>" else a for a in args]
        if args[0] == "train":
            args += ["--no-progress"] if "--resume" in args else QUICK
        if args[0] in ("probe", "embed"):  # the full data set where it is installed
            args += ["--limit", "1000"]
        done = _run([exe, *args], cwd, env, " ".join(argv))
        if args[0] == "train" and run_folder is None:
            run_folder = Path(re.search(r"run folder: (\S+)", done.stdout).group(1))
            run_folder = run_folder if run_folder.is_absolute() else cwd / run_folder
        config = cwd / args[1] / "config.json" if len(args) > 1 else None
        task_run = args[0] in ("evaluate", "predict") and config.is_file() and json.loads(
            config.read_text()).get("task", "classify") != "classify"
        if args[0] == "evaluate":
            assert ("test m" if task_run else "confusion matrix (rows: true class") \
                in done.stdout
        if args[0] == "predict":
            for image in (a for a in args[2:] if not a.startswith("-")):
                assert image in done.stdout
    assert [s for s, _ in skipped] == ["make demo", "make test", "filterbank serve",
                                       "mpirun -np", "mpirun -np"], skipped
    for i, body in enumerate(blocks("python")):
        code = body.replace("runs/<run>", str(run_folder))
        _run([sys.executable, "-c", code], cwd, env, f"python block {i + 1}")
