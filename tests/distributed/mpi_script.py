"""Run under ``mpirun -np 2`` by test_mpi.py: ``python mpi_script.py MODE [ARGS]``.

train BUCKET_MB  20 SGD steps of a small CNN with DistributedDataParallel; rank 0 checks that
                 every rank ends with bit-identical weights and that they match one process
                 training on the concatenated batch; prints OK lines.
raise            rank 1 raises while rank 0 waits in a barrier: the job must die, not hang.
mismatch         the ranks build different models: DistributedDataParallel must raise on every
                 rank.
trainer          Trainer.fit with DistributedDataParallel, distributed_loader and
                 DistributedCallback for 2 epochs: weights and History equal on every rank.
accumulate       gradient accumulation with no_sync equals one process.
unused           a parameter outside the loss: the next forward raises, naming it.
"""

import hashlib
import sys

import numpy as np

import filterbank as fb
from filterbank import distributed as dist
from filterbank import nn


def small_cnn(seed: int) -> nn.Module:
    fb.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 8, 3),
                         nn.ReLU(), nn.Flatten(), nn.Linear(8 * 3 * 3, 10))


def flat_params(model) -> np.ndarray:
    return np.concatenate([p.data.ravel() for p in model.parameters()])


def train(bucket_mb: float) -> None:
    r, p = dist.rank(), dist.world_size()
    steps, per_rank = 20, 8
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((steps, per_rank * p, 1, 12, 12)).astype(np.float32)
    ys = rng.integers(0, 10, (steps, per_rank * p))
    # each rank starts from different weights: the wrap must broadcast rank 0's
    model = dist.DistributedDataParallel(small_cnn(seed=100 + r), bucket_cap_mb=bucket_mb)
    start = {k: v.copy() for k, v in model.module.state_dict().items()}
    loss_fn = nn.CrossEntropyLoss()
    opt = fb.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for s in range(steps):
        shard = slice(r * per_rank, (r + 1) * per_rank)  # the concatenated batch, cut in p
        opt.zero_grad()
        loss = loss_fn(model(fb.tensor(xs[s, shard])), fb.tensor(ys[s, shard]))
        loss.backward()
        opt.step()
    w = flat_params(model.module)
    digest = np.frombuffer(hashlib.sha256(w.tobytes()).digest(), np.uint8)
    digests = dist.all_gather(digest)
    if r != 0:
        return
    print(f"buckets {len(model._buckets)}")
    if not (digests == digests[0]).all():
        sys.exit("weights differ between ranks")
    print("OK identical on all ranks")
    ref = small_cnn(seed=0)
    ref.load_state_dict(start)
    ref_opt = fb.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    for s in range(steps):
        ref_opt.zero_grad()
        loss_fn(ref(fb.tensor(xs[s])), fb.tensor(ys[s])).backward()
        ref_opt.step()
    w_ref = flat_params(ref)
    moved = np.abs(w - flat_params_of(start)).max()
    err = np.abs(w - w_ref).max()
    print(f"max |w - w_single| = {err:.3g}, max |w - w_start| = {moved:.3g}")
    if not np.allclose(w, w_ref, rtol=1e-5, atol=1e-6):
        sys.exit("distributed training differs from one process on the concatenated batch")
    print("OK equals single-process training")


def flat_params_of(state: dict) -> np.ndarray:
    return np.concatenate([v.ravel() for k, v in state.items()])


def trainer() -> None:
    from filterbank.data import TensorDataset
    from filterbank.train import Trainer
    from filterbank.train.callbacks import Callback

    class LocalLoss(Callback):
        order = 0  # before DistributedCallback (order 1): this rank's own epoch loss

        def __init__(self):
            self.losses = []

        def on_epoch_end(self, trainer, epoch, logs):
            self.losses.append(float(logs["loss"]))

    r = dist.rank()
    local = LocalLoss()
    rng = np.random.default_rng(0)
    ds = TensorDataset(rng.standard_normal((40, 1, 12, 12)).astype(np.float32),
                       rng.integers(0, 10, 40))
    model = dist.DistributedDataParallel(small_cnn(seed=100 + r))
    loader = dist.distributed_loader(ds, batch_size=8, seed=1)
    t = Trainer(model, fb.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(),
                metrics=["accuracy"], callbacks=[dist.DistributedCallback([loader.sampler]), local],
                progress=False)
    history = t.fit(loader, epochs=2, verbose=0)
    w = flat_params(model.module)
    losses = np.array(history["loss"], np.float64)
    got = dist.all_gather(np.concatenate([w.astype(np.float64), losses]))
    if r == 0:
        assert (got == got[0]).all(), "weights or History differ between ranks"
        assert loader.sampler.epoch == 1 and len(loader) == 3
    # the History holds the mean over the ranks of their own epoch losses
    mean = dist.all_gather(np.array(local.losses, np.float64)).mean(axis=0)
    if r == 0:
        np.testing.assert_allclose(losses, mean, rtol=1e-12)
        print(f"OK trainer: losses {losses.round(4).tolist()} identical on all ranks")


def accumulate() -> None:
    """Two micro-batches per step, the first under no_sync: equals one process summing the
    gradients of the two halves of the concatenated batch."""
    r, p = dist.rank(), dist.world_size()
    rng = np.random.default_rng(2)
    xs = rng.standard_normal((2, 4 * p, 1, 12, 12)).astype(np.float32)
    ys = rng.integers(0, 10, (2, 4 * p))
    model = dist.DistributedDataParallel(small_cnn(seed=100 + r), bucket_cap_mb=0.001)
    ref = small_cnn(seed=0)
    ref.load_state_dict(model.module.state_dict())
    loss_fn = nn.CrossEntropyLoss()
    shard = slice(4 * r, 4 * (r + 1))
    with model.no_sync():
        loss_fn(model(fb.tensor(xs[0, shard])), fb.tensor(ys[0, shard])).backward()
    loss_fn(model(fb.tensor(xs[1, shard])), fb.tensor(ys[1, shard])).backward()
    for k in range(2):
        loss_fn(ref(fb.tensor(xs[k])), fb.tensor(ys[k])).backward()
    g = np.concatenate([q.grad.data.ravel() for q in model.parameters()])
    g_ref = np.concatenate([q.grad.data.ravel() for q in ref.parameters()])
    assert np.allclose(g, g_ref, rtol=1e-5, atol=1e-7), np.abs(g - g_ref).max()
    print(f"OK rank {r}: no_sync accumulation equals one process", flush=True)


def unused() -> None:
    model = dist.DistributedDataParallel(nn.Sequential(nn.Linear(4, 2), nn.Linear(2, 2)))
    x = fb.tensor(np.ones((3, 4), np.float32))
    model.module[0](x).sum().backward()  # through the wrapper's module: no forward
    model(x)  # arms the reduction
    model.module[0](x).sum().backward()  # the second Linear gets no gradient
    try:
        model(x)
    except RuntimeError as e:
        print(f"rank {dist.rank()} raised: {e}", flush=True)


def fail() -> None:
    if dist.rank() == 1:
        raise ValueError("rank 1 failed on purpose")
    dist.barrier()  # rank 0 would wait here for ever without the abort


def mismatch() -> None:
    r = dist.rank()
    model = nn.Sequential(nn.Linear(4, 2 + r))
    try:
        dist.DistributedDataParallel(model)
    except RuntimeError as e:
        print(f"rank {r} raised: {e}", flush=True)
        return
    print(f"rank {r} did not raise", flush=True)


if __name__ == "__main__":
    dist.init()
    mode = sys.argv[1]
    if mode == "train":
        train(float(sys.argv[2]))
    elif mode == "raise":
        fail()
    elif mode == "mismatch":
        mismatch()
    elif mode == "trainer":
        trainer()
    elif mode == "accumulate":
        accumulate()
    elif mode == "unused":
        unused()
    else:
        sys.exit(f"unknown mode {mode!r}")
