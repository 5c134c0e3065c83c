"""Data-parallel training throughput over MPI: images/s with 1 and 2 ranks.

LeNet-5 (padding=2) training steps on the embedded Fashion-MNIST sample, wrapped in
``DistributedDataParallel``, each rank fed its ``DistributedSampler`` shard at a fixed batch
per rank (weak scaling: the global batch grows with the ranks, as in PyTorch DDP practice).
Reported per world size: global images/s, the speed-up over one rank, and the share of the step
spent in gradient communication (launching the bucket all-reduces, MPI progress calls, and
waiting for them after backward), and the bare cost of one step's all-reduce. One BLAS thread
per rank, so two ranks need two free cores; with fewer, the ranks time-share and the
speed-up shows the contention.

Run: ``.venv/bin/python bench/distributed.py [--ranks 1 2] [--steps 40] [--batch 64]``.
The script launches ``mpirun -np N`` on itself (``--worker``) and prints a table; root in a
container also needs OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 (set here).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def worker(steps: int, batch: int, warmup: int) -> None:
    import numpy as np

    import filterbank as fb
    from filterbank import distributed as dist
    from filterbank.data import DataLoader, TensorDataset
    from filterbank.data.datasets.fashion_mnist import FashionMNISTSample
    from filterbank.models.lenet import lenet5

    dist.init()
    p = dist.world_size()
    fb.manual_seed(0)
    model = dist.DistributedDataParallel(lenet5(padding=2))
    comm_s = [0.0]

    def timed(fn):
        def run(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                comm_s[0] += time.perf_counter() - t
        return run

    if p > 1:  # instance attributes shadow the methods: time every MPI call of the reduction
        model._launch_ready_buckets = timed(model._launch_ready_buckets)
        model._finish = timed(model._finish)
    raw = FashionMNISTSample(train=True)
    images = np.asarray(raw.data, np.float32).reshape(-1, 28, 28, 1).transpose(0, 3, 1, 2)
    ds = TensorDataset(np.ascontiguousarray(images / 255), np.asarray(raw.targets, np.int64))
    sampler = dist.DistributedSampler(ds, seed=0)
    loader = DataLoader(ds, batch_size=batch, sampler=sampler, drop_last=True)
    opt = fb.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = fb.nn.CrossEntropyLoss()
    done, epoch, t0 = 0, 0, 0.0
    while done < warmup + steps:
        sampler.set_epoch(epoch)
        for x, y in loader:
            if done == warmup:
                dist.barrier()
                t0, comm_s[0] = time.perf_counter(), 0.0
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
            done += 1
            if done == warmup + steps:
                break
        epoch += 1
    dist.barrier()
    wall = time.perf_counter() - t0
    shares = dist.all_gather(np.array([comm_s[0] / wall]))
    # the bare cost of the message: blocking all-reduces of one step's gradients, ranks in step
    flat = np.concatenate([q.data.ravel() for q in model.parameters()])
    dist.barrier()
    t = time.perf_counter()
    for _ in range(20):
        dist.all_reduce(flat)
    bare_ms = 1e3 * (time.perf_counter() - t) / 20
    grad_mb = sum(q.data.nbytes for q in model.parameters()) / 1e6
    if dist.is_main():
        print(json.dumps({"ranks": p, "steps": steps, "batch_per_rank": batch,
                          "images_per_s": steps * batch * p / wall, "step_ms": 1e3 * wall / steps,
                          "comm_share": float(shares.mean()), "grad_mb": grad_mb,
                          "bare_allreduce_ms": bare_ms,
                          "buckets": len(model._buckets)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64, help="images per rank per step")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.steps, args.batch, args.warmup)
        return
    from _common import table

    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    rows = []
    for n in args.ranks:
        cmd = ["mpirun", "--oversubscribe", "--bind-to", "none", "-np", str(n), sys.executable,
               __file__, "--worker", "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--batch", str(args.batch)]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if out.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr}")
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = rows[0]["images_per_s"] / rows[0]["ranks"]
    for r in rows:
        r["speedup"] = r["images_per_s"] / base
        r["efficiency"] = r["speedup"] / r["ranks"]
        r["comm_pct"] = 100 * r["comm_share"]
    print(f"LeNet-5, Fashion-MNIST sample, batch {args.batch} per rank, {args.steps} steps, "
          f"gradients {rows[0]['grad_mb']:.2f} MB in {rows[-1]['buckets']} bucket(s); "
          f"{os.cpu_count()} CPUs")
    print(table(rows, [("ranks", "ranks", "d"), ("images_per_s", "images/s", ".0f"),
                       ("step_ms", "ms/step", ".1f"), ("speedup", "speed-up", ".2f"),
                       ("efficiency", "efficiency", ".2f"), ("comm_pct", "all-reduce %", ".1f"),
                       ("bare_allreduce_ms", "bare all-reduce ms", ".2f")]))
    print("all-reduce %: time in the gradient reduction (launch, progress, wait; includes waiting "
          "for a slower rank); bare all-reduce: one step's gradients alone, ranks in step")


if __name__ == "__main__":
    main()
