"""filterbank.distributed in one process: the sampler's shards, and the world-size-1 fallback."""

import numpy as np
import pytest

import filterbank as fb
from filterbank import distributed as dist
from filterbank import nn
from filterbank.data import DataLoader, DistributedSampler, TensorDataset


def shards(n, p, **kw):
    return [list(DistributedSampler(range(n), num_replicas=p, rank=r, **kw)) for r in range(p)]


@pytest.mark.parametrize("n,p", [(10, 3), (12, 4), (7, 2), (2, 5), (1, 1)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_shards_cover_everything_padded_to_equal_size(n, p, shuffle):
    parts = shards(n, p, shuffle=shuffle, seed=3)
    size = -(-n // p)
    assert [len(s) for s in parts] == [size] * p
    flat = [i for s in parts for i in s]
    assert set(flat) == set(range(n))
    # padding repeats only as many indices as needed, and the shards partition the padded list
    assert len(flat) - n == size * p - n
    if n >= p:
        interleaved = [parts[i % p][i // p] for i in range(size * p)]
        assert len(set(interleaved[:n])) == n  # the first n are a permutation


def test_unpadded_shards_are_disjoint():
    parts = shards(12, 4, shuffle=True, seed=1)
    assert sum(len(s) for s in parts) == len({i for s in parts for i in s}) == 12


def test_rank_takes_every_pth_index_as_pytorch():
    # PyTorch: indices 0..9 padded with [0, 1] to 12, rank r takes indices[r::3]
    assert shards(10, 3, shuffle=False) == [[0, 3, 6, 9], [1, 4, 7, 0], [2, 5, 8, 1]]


def test_drop_last_truncates():
    parts = shards(10, 3, shuffle=False, drop_last=True)
    assert parts == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    assert len(DistributedSampler(range(10), 3, 0, drop_last=True)) == 3


def test_set_epoch_reshuffles_the_same_way_on_every_rank():
    s = DistributedSampler(range(100), num_replicas=2, rank=0, seed=5)
    e0 = list(s)
    assert list(s) == e0  # no set_epoch: the same order
    s.set_epoch(1)
    e1 = list(s)
    assert e1 != e0
    other = DistributedSampler(range(100), num_replicas=2, rank=1, seed=5)
    other.set_epoch(1)
    assert set(e1).isdisjoint(other) and len(set(e1) | set(other)) == 100
    assert list(DistributedSampler(range(100), 2, 0, seed=6)) != e0  # the seed matters


def test_sampler_validates():
    with pytest.raises(ValueError, match="rank must be an int in 0..1"):
        DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="num_replicas must be an int >= 1"):
        DistributedSampler(range(4), num_replicas=0, rank=0)


def test_dataloader_takes_the_sampler():
    ds = TensorDataset(np.arange(10, dtype=np.float32), np.arange(10))
    sampler = DistributedSampler(ds, num_replicas=2, rank=1, shuffle=False)
    loader = DataLoader(ds, batch_size=2, sampler=sampler, as_numpy=True)
    assert len(loader) == 3
    assert [y.tolist() for _, y in loader] == [[1, 3], [5, 7], [9]]
    with pytest.raises(ValueError, match="shuffle must be False"):
        DataLoader(ds, sampler=sampler, shuffle=True)


def test_single_process_fallback(monkeypatch):
    assert not dist.launched_by_mpi()
    assert (dist.rank(), dist.world_size(), dist.is_main()) == (0, 1, True)
    dist.barrier()
    a = np.arange(4, dtype=np.float32)
    assert dist.all_reduce(a, op="mean") is a and a.tolist() == [0, 1, 2, 3]
    assert dist.broadcast(a).tolist() == [0, 1, 2, 3]
    assert dist.all_gather(a).shape == (1, 4)
    with pytest.raises(ValueError, match="op must be 'sum' or 'mean'"):
        dist.all_reduce(a, op="max")
    with pytest.raises(ValueError, match="C-contiguous"):
        dist.all_reduce(np.zeros((4, 4), np.float32)[:, ::2])
    sampler = DistributedSampler(range(5))
    assert (sampler.num_replicas, sampler.rank, len(sampler)) == (1, 0, 5)


def test_wrapped_model_trains_like_the_model_in_one_process():
    def run(wrap):
        fb.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        if wrap:
            model = dist.DistributedDataParallel(model)
        opt = fb.optim.SGD(model.parameters(), lr=0.1)
        x, y = fb.tensor(np.ones((3, 4), np.float32)), fb.tensor(np.array([0, 1, 0]))
        for _ in range(3):
            opt.zero_grad()
            nn.CrossEntropyLoss()(model(x), y).backward()
            opt.step()
        return [p.data.copy() for p in model.parameters()], model

    plain, _ = run(False)
    wrapped, ddp = run(True)
    assert all(np.array_equal(a, b) for a, b in zip(plain, wrapped))
    assert list(ddp.state_dict())[0].startswith("module.")  # PyTorch's key prefix
    with pytest.raises(ValueError, match="bucket_cap_mb must be > 0"):
        dist.DistributedDataParallel(nn.Linear(2, 2), bucket_cap_mb=0)


@pytest.mark.parametrize("name", ["comm", "sampler", "parallel", "train"])
def test_docstring_examples_run(name):
    import doctest
    import importlib

    module = importlib.import_module(f"filterbank.distributed.{name}")
    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted > 0


def test_callback_advances_the_samplers_and_keeps_one_process_logs():
    ds = TensorDataset(np.arange(6, dtype=np.float32))
    loader = dist.distributed_loader(ds, batch_size=2, seed=4)
    cb = dist.DistributedCallback([loader.sampler])
    cb.on_epoch_begin(None, 3)
    assert loader.sampler.epoch == 3
    logs = {"epoch": 4, "loss": 0.5, "images_per_sec": 10.0}
    cb.on_epoch_end(None, 3, logs)
    assert logs == {"epoch": 4, "loss": 0.5, "images_per_sec": 10.0}
