"""Timing helpers shared by the benchmarks: block timing, warm-up, medians, ratio tables, JSON.

Protocol (the machine is shared and noisy): both libraries run in the same process; each
library runs a *block* of consecutive steps (never single steps interleaved with the other
library, which would pollute caches and thread pools); blocks alternate between libraries for
several rounds, each block after a short pause and one untimed step; we report the median
per-step time over rounds, with the min and max.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Timing:
    """Per-step milliseconds over rounds."""

    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")

    @property
    def min(self) -> float:
        return min(self.samples) if self.samples else float("nan")

    @property
    def max(self) -> float:
        return max(self.samples) if self.samples else float("nan")

    def summary(self) -> dict:
        return {"median_ms": round(self.median, 3), "min_ms": round(self.min, 3),
                "max_ms": round(self.max, 3), "rounds": len(self.samples)}


#: "wall" (time.perf_counter) or "cpu" (time.thread_time: the CPU time of the calling thread,
#: which a busy machine does not inflate; only meaningful when everything runs on that one
#: thread: BLAS, PyTorch and filterbank all single-threaded)
CLOCK = "wall"


def _now() -> float:
    return time.thread_time() if CLOCK == "cpu" else time.perf_counter()


def time_block(step: Callable[[], object], steps: int) -> float:
    """Mean milliseconds per step over one block of ``steps`` consecutive calls."""
    t0 = _now()
    for _ in range(steps):
        step()
    return (_now() - t0) * 1e3 / steps


def steps_for(step: Callable[[], object], block_s: float, max_steps: int = 50) -> int:
    """How many steps make a block of about ``block_s`` seconds (after one warm-up call)."""
    step()
    t = time_block(step, 1) / 1e3
    return int(max(1, min(max_steps, block_s / max(t, 1e-6))))


def compare(steps: dict[str, Callable[[], object]], rounds: int = 5, block_s: float = 0.25,
            warmup: int = 2, pause_s: float = 0.2) -> dict[str, Timing]:
    """Time several implementations of the same step: warm each up, then ``rounds`` rounds in
    which every implementation runs one block. Returns a Timing per name.

    Before each block: a pause of ``pause_s`` (the previous block's thread pools, OpenBLAS's
    and PyTorch's OpenMP alike, spin for a while after their last call and would take cores
    from this block) and one untimed step (this implementation's own threads awake, its
    caches warm)."""
    counts = {}
    for name, step in steps.items():
        for _ in range(warmup):
            step()
        counts[name] = steps_for(step, block_s)
    out = {name: Timing() for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            time.sleep(pause_s)
            step()
            out[name].samples.append(time_block(step, counts[name]))
    return out


def ratio(ours: Timing, reference: Timing) -> float:
    """reference time / our time: 1.0 is parity, above 1 we are faster."""
    return reference.median / ours.median if ours.median > 0 else float("nan")


def environment() -> dict:
    info = {"python": platform.python_version(), "numpy": np.__version__,
            "machine": platform.machine(), "cpus": os.cpu_count(), "clock": CLOCK,
            "filterbank_threads": os.environ.get("FILTERBANK_NUM_THREADS", "auto"),
            "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "auto")}
    try:
        info["loadavg"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:  # pragma: no cover - not on Linux
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:  # pragma: no cover
        pass
    return info


def table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """Plain-text table; ``columns`` are (key, header, format spec)."""
    heads = [h for _, h, _ in columns]
    body = [[format(r.get(k, float("nan")), f) if f else str(r.get(k, ""))
             for k, _, f in columns] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h)
              for i, h in enumerate(heads)]
    lines = ["  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in
                       enumerate(zip(heads, widths)))]
    for b in body:
        lines.append("  ".join(c.rjust(w) if i else c.ljust(w)
                               for i, (c, w) in enumerate(zip(b, widths))))
    return "\n".join(lines)


def write_json(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(payload, indent=2, default=_jsonable) + "\n")
    return path


def _jsonable(o):
    if isinstance(o, Timing):
        return o.summary()
    if hasattr(o, "__dataclass_fields__"):
        return asdict(o)
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
