"""DataLoader: batching, shuffling with its own generator, exact resume, collate, fast path,
prefetching, batch transforms."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
import weakref
from collections import namedtuple

import numpy as np
import pytest

import filterbank as fb
from filterbank.data import DataLoader, Dataset, TensorDataset, collate_numpy, default_collate
from filterbank.data.transforms import RandomHorizontalFlip

LEAK_LIMIT = 700 * 2**20  # bytes of address space for the leak subprocess


class ItemDataset(Dataset):
    """Array-backed, but without get_batch: the per-item path."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


class NoItems(TensorDataset):
    """Fails if the loader fetches sample by sample instead of using get_batch."""

    def __getitem__(self, index):
        raise AssertionError("per-item fetch used although get_batch exists")


def data(n=23):
    x = np.arange(n * 4, dtype=np.float32).reshape(n, 1, 2, 2)
    y = np.arange(n, dtype=np.int64) % 5
    return x, y


def epoch_ids(loader):
    return np.concatenate([np.asarray(x)[:, 0, 0, 0] // 4 for x, _ in loader]).astype(int)


# ------------------------------------------------------------------- batching
@pytest.mark.parametrize("n, bs, drop_last, sizes", [
    (23, 5, False, [5, 5, 5, 5, 3]), (23, 5, True, [5, 5, 5, 5]), (20, 5, True, [5] * 4),
    (3, 10, False, [3]), (3, 10, True, []),
])
def test_batch_sizes_and_len(n, bs, drop_last, sizes):
    loader = DataLoader(TensorDataset(*data(n)), batch_size=bs, drop_last=drop_last)
    assert len(loader) == len(sizes)
    assert [len(x) for x, _ in loader] == sizes


def test_outputs_are_tensors_with_dtypes_kept():
    x, y = data()
    for ds in (TensorDataset(x, y), ItemDataset(x, y)):
        bx, by = next(iter(DataLoader(ds, batch_size=4)))
        assert isinstance(bx, fb.Tensor) and isinstance(by, fb.Tensor)
        assert bx.dtype == np.float32 and by.dtype == np.int64
        assert bx.shape == (4, 1, 2, 2)
    bx, by = next(iter(DataLoader(TensorDataset(x, y), batch_size=4, as_numpy=True)))
    assert type(bx) is np.ndarray and type(by) is np.ndarray


# ------------------------------------------------------------------- shuffling
def test_shuffle_is_a_permutation_that_changes_per_epoch():
    loader = DataLoader(TensorDataset(*data()), batch_size=4, shuffle=True, generator=0)
    e1, e2 = epoch_ids(loader), epoch_ids(loader)
    np.testing.assert_array_equal(np.sort(e1), np.arange(23))
    np.testing.assert_array_equal(np.sort(e2), np.arange(23))
    assert not np.array_equal(e1, e2)
    assert not np.array_equal(e1, np.arange(23))
    unshuffled = DataLoader(TensorDataset(*data()), batch_size=4)
    np.testing.assert_array_equal(epoch_ids(unshuffled), np.arange(23))


def test_shuffle_deterministic_and_independent_of_global_generator():
    ds = TensorDataset(*data())
    a = DataLoader(ds, batch_size=4, shuffle=True, generator=7)
    b = DataLoader(ds, batch_size=4, shuffle=True, generator=np.random.default_rng(7))
    first = epoch_ids(a)
    fb.manual_seed(123)
    fb.randn(100)  # draws from the global generator must not change the loader's order
    np.testing.assert_array_equal(epoch_ids(b), first)
    # default generator: seeded from the global one at construction
    fb.manual_seed(5)
    c = DataLoader(ds, batch_size=4, shuffle=True)
    fb.manual_seed(5)
    d = DataLoader(ds, batch_size=4, shuffle=True)
    fb.randn(10)
    np.testing.assert_array_equal(epoch_ids(c), epoch_ids(d))


def test_state_dict_resumes_the_exact_stream():
    ds = TensorDataset(*data())
    flip = RandomHorizontalFlip(0.5, generator=np.random.default_rng(9))
    a = DataLoader(ds, batch_size=4, shuffle=True, generator=1, transform=flip)
    list(a)
    state = a.state_dict()
    want = [np.asarray(x).copy() for x, _ in a]
    b = DataLoader(ds, batch_size=4, shuffle=True, generator=99,
                   transform=RandomHorizontalFlip(0.5, generator=np.random.default_rng(0)))
    b.load_state_dict(state)
    got = [np.asarray(x) for x, _ in b]
    for w, g in zip(want, got, strict=True):
        np.testing.assert_array_equal(w, g)
    with pytest.raises(ValueError, match="transform generators"):
        DataLoader(ds).load_state_dict(state)


# ---------------------------------------------------------- fast path / collate
def test_fast_path_equals_item_path():
    x, y = data()
    fast = DataLoader(NoItems(x, y), batch_size=6, shuffle=True, generator=3)
    slow = DataLoader(ItemDataset(x, y), batch_size=6, shuffle=True, generator=3)
    for (fx, fy), (sx, sy) in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(fx.numpy(), sx.numpy())
        np.testing.assert_array_equal(fy.numpy(), sy.numpy())
        assert fy.dtype == sy.dtype == np.int64


Pair = namedtuple("Pair", "image label")


@pytest.mark.parametrize("samples, check", [
    ([(np.ones(2, np.float32), 1), (np.zeros(2, np.float32), 2)],
     lambda b: b[0].shape == (2, 2) and b[0].dtype == np.float32 and b[1].dtype == np.int64),
    ([{"x": np.ones(3), "name": "a"}, {"x": np.ones(3), "name": "b"}],
     lambda b: b["x"].shape == (2, 3) and b["name"] == ["a", "b"]),
    ([Pair(np.ones(1), 0.5), Pair(np.ones(1), 1.5)],
     lambda b: isinstance(b, Pair) and b.label.dtype == np.float32),
    ([[fb.ones(2), True], [fb.zeros(2), False]],
     lambda b: isinstance(b, list) and b[0].shape == (2, 2) and b[1].dtype == np.bool_),
    ([np.uint8(3), np.uint8(4)], lambda b: b.dtype == np.uint8 and b.tolist() == [3, 4]),
])
def test_collate_structures(samples, check):
    assert check(collate_numpy(samples))


def test_default_collate_gives_tensors_and_errors_are_clear():
    b = default_collate([(np.ones(2, np.float32), 1), (np.zeros(2, np.float32), 2)])
    assert isinstance(b[0], fb.Tensor) and isinstance(b[1], fb.Tensor)
    with pytest.raises(ValueError, match="equal shapes"):
        collate_numpy([np.ones(2), np.ones(3)])
    with pytest.raises(TypeError, match="don't know how to batch samples of type object"):
        collate_numpy([object(), object()])
    with pytest.raises(ValueError, match="same number of elements"):
        collate_numpy([(1, 2), (1,)])


def test_custom_collate_fn_output_used_as_is():
    x, y = data()
    loader = DataLoader(ItemDataset(x, y), batch_size=3, collate_fn=lambda s: len(s))
    assert list(loader)[:2] == [3, 3]


# ------------------------------------------------------------------ transforms
def test_batch_transform_applies_to_inputs_with_loader_generator():
    x, y = data(8)
    x = np.broadcast_to(np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2), (8, 1, 2, 2)).copy()
    flips = []
    for seed in (0, 0, 1):
        loader = DataLoader(TensorDataset(x, y), batch_size=8, generator=seed,
                            transform=RandomHorizontalFlip(0.5))
        bx, by = next(iter(loader))
        np.testing.assert_array_equal(by.numpy(), y)  # targets untouched
        flips.append(bx.numpy()[:, 0, 0, 0] == 1)
    np.testing.assert_array_equal(flips[0], flips[1])
    assert flips[0].any() and not flips[0].all()  # independent per image
    assert not np.array_equal(flips[0], flips[2])


def test_plain_callable_transform():
    x, y = data(4)
    loader = DataLoader(TensorDataset(x, y), batch_size=4, transform=lambda a: a * 0)
    bx, _ = next(iter(loader))
    assert float(bx.numpy().sum()) == 0.0


# -------------------------------------------------------------------- prefetch
def test_prefetch_gives_identical_batches():
    x, y = data(40)
    kw = dict(batch_size=3, shuffle=True, transform=RandomHorizontalFlip(0.5))
    ref = [(a.numpy().copy(), b.numpy().copy())
           for a, b in DataLoader(TensorDataset(x, y), generator=4, **kw)]
    got = [(a.numpy(), b.numpy())
           for a, b in DataLoader(TensorDataset(x, y), generator=4, prefetch=2, **kw)]
    assert len(ref) == len(got)
    for (rx, ry), (gx, gy) in zip(ref, got):
        np.testing.assert_array_equal(rx, gx)
        np.testing.assert_array_equal(ry, gy)


def test_prefetch_propagates_errors_and_stops_thread_on_break():
    class Broken(ItemDataset):
        def __getitem__(self, i):
            if i == 5:
                raise KeyError("sample 5 is broken")
            return super().__getitem__(i)

    x, y = data(12)
    with pytest.raises(KeyError, match="sample 5 is broken"):
        list(DataLoader(Broken(x, y), batch_size=2, prefetch=2))
    before = threading.active_count()
    it = iter(DataLoader(TensorDataset(x, y), batch_size=1, prefetch=1))
    next(it)
    it.close()
    assert threading.active_count() == before


def _threads_settle(limit: int, timeout: float = 5.0) -> int:
    """threading.active_count() once it is <= limit (stopped workers take up to 0.1 s)."""
    deadline = time.monotonic() + timeout
    while threading.active_count() > limit and time.monotonic() < deadline:
        time.sleep(0.02)
    return threading.active_count()


def test_an_abandoned_prefetch_iterator_is_collected_and_stops_its_thread():
    """Issue 15 item 10: the worker thread held the iterator (a bound method as target), so
    an iterator dropped after one batch lived on, its thread blocked on a full queue."""
    before = threading.active_count()
    ld = DataLoader(TensorDataset(*data(64)), batch_size=4, shuffle=True, generator=0,
                    prefetch=2)
    it = iter(ld)
    next(it)
    ref = weakref.ref(it)
    del it
    assert ref() is None  # nothing else (the thread) keeps it alive
    for _ in range(50):
        next(iter(ld))
    assert _threads_settle(before) == before


def test_abandoned_prefetch_iterators_do_not_leak_memory():
    """Issue 15 item 10's reproduction: 200 x next(iter(loader)) made 201 threads and grew
    from 38 to 994 MiB. Run under a 700 MiB address-space limit in a subprocess (each leaked
    thread kept 2 batches of 1.6 MB and its stack)."""
    code = textwrap.dedent("""
        import resource, threading, time
        import numpy as np
        resource.setrlimit(resource.RLIMIT_AS, (MAXBYTES, MAXBYTES))
        from filterbank.data import DataLoader, TensorDataset
        ld = DataLoader(TensorDataset(np.zeros((6000, 1, 28, 28), np.float32),
                                      np.zeros(6000, np.int64)),
                        batch_size=512, shuffle=True, generator=0, prefetch=2)
        for _ in range(200):
            next(iter(ld))
        deadline = time.monotonic() + 5
        while threading.active_count() > 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        print(threading.active_count())
    """).replace("MAXBYTES", str(LEAK_LIMIT))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["1"]


def test_close_stops_the_thread_and_frees_its_batches():
    before = threading.active_count()
    it = iter(DataLoader(TensorDataset(*data(64)), batch_size=4, prefetch=3))
    next(it)
    it.close()
    assert threading.active_count() == before
    assert it._queue.empty()
    with pytest.raises(StopIteration):
        next(it)


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(batch_size=0), ValueError, "batch_size must be a positive int, got 0"),
    (dict(batch_size=2.5), ValueError, "batch_size must be a positive int"),
    (dict(prefetch=-1), ValueError, "prefetch must be an int >= 0"),
    (dict(generator="seed"), TypeError, "generator must be a np.random.Generator"),
    (dict(collate_fn=3), TypeError, "collate_fn must be callable"),
    (dict(transform=3), TypeError, "transform must be callable"),
])
def test_argument_errors(kwargs, err, match):
    with pytest.raises(err, match=match):
        DataLoader(TensorDataset(*data()), **kwargs)
    with pytest.raises(TypeError, match="expected a data set"):
        DataLoader(5)
