"""Where a training (or inference) step spends its time, per op: CPU time of every Function's
forward and backward, summed over steps, next to the whole step.

Run: ``.venv/bin/python bench/profile_ops.py lenet5 64 20 [train|infer] [--wall]`` (model
names as in ``bench/_e2e.py``). Use ``FILTERBANK_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1`` for a
single-thread profile: CPU time then equals the work done, whatever else the machine is running.
``--wall`` times wall-clock seconds instead (on a quiet machine: where a multi-threaded step
waits, e.g. an op that does not spread over the threads).
"""

from __future__ import annotations

import collections
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _e2e import MODELS, build_fb, fb_steps, make_data  # noqa: E402

import filterbank.functional  # noqa: E402, F401  (defines every Function subclass)
from filterbank.autograd.function import Function  # noqa: E402

acc: dict[tuple[str, str], float] = collections.defaultdict(float)
clock = time.process_time
calls: collections.Counter = collections.Counter()


def _subclasses(cls):
    for s in cls.__subclasses__():
        yield s
        yield from _subclasses(s)


def _instrument() -> None:
    for cls in set(_subclasses(Function)):
        for meth in ("forward", "backward"):
            if meth not in cls.__dict__:
                continue

            def timed(*a, _f=cls.__dict__[meth], _key=(cls.__name__, meth), **k):
                t = clock()
                try:
                    return _f(*a, **k)
                finally:
                    acc[_key] += clock() - t
                    calls[_key] += 1

            setattr(cls, meth, timed)


def main(argv: list[str]) -> None:
    global clock
    if "--wall" in argv:
        clock = time.perf_counter
        argv = [a for a in argv if a != "--wall"]
    what = "wall" if clock is time.perf_counter else "CPU"
    name, batch, steps = argv[0], int(argv[1]), int(argv[2])
    mode = argv[3] if len(argv) > 3 else "train"
    _instrument()
    spec = MODELS[name]
    model = build_fb(name)
    x, y = make_data(spec.chw, batch)
    train, infer = fb_steps(model, x, y)
    step = train if mode == "train" else infer
    for _ in range(2):
        step()
    acc.clear()
    calls.clear()
    t0 = clock()
    for _ in range(steps):
        step()
    total = (clock() - t0) / steps
    print(f"{name} b{batch} {mode}: {total * 1e3:.2f} ms {what} per step")
    ops = 0.0
    for (op, meth), v in sorted(acc.items(), key=lambda kv: -kv[1]):
        ops += v
        print(f"  {op:>22} {meth:<8} {v / steps * 1e3:8.2f} ms  "
              f"({v / steps / total:5.1%}, {calls[op, meth] // steps}/step)")
    print(f"  ops {ops / steps * 1e3:.2f} ms; engine, optimizer and Python "
          f"{(total - ops / steps) * 1e3:.2f} ms")


if __name__ == "__main__":
    main(sys.argv[1:])
