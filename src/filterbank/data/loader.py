"""``DataLoader``: batches from a data set, shuffled by its own seeded generator.

One pass over a loader (an epoch) draws one permutation from the loader's own
:class:`numpy.random.Generator` (never the global one), cuts it into batches, fetches each batch
and applies the batch ``transform``. Because shuffling and augmentation draw from that one
generator, saving its state (``state_dict()``) and restoring it later continues the exact same
stream of batches, which is what resuming a training run needs.

Fetching uses a fast path when the data set offers ``get_batch(indices)`` (array-backed data
sets such as :class:`~filterbank.data.TensorDataset`): one fancy-indexing gather per array
instead of a Python loop over samples plus a collate.
"""

from __future__ import annotations

import queue
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from filterbank import random as _random
from filterbank.tensor import Tensor


def collate_numpy(samples: Sequence):
    """Stack a list of samples into one batch of NumPy arrays, keeping the samples' structure.

    Arrays and Tensors are stacked along a new axis 0; Python ints become int64, floats float32,
    bools bool; tuples, lists and dicts are collated element by element; strings stay lists.

    Example:
        >>> b = collate_numpy([(np.zeros(3, np.float32), 1), (np.ones(3, np.float32), 2)])
        >>> b[0].shape, b[1].tolist()
        ((2, 3), [1, 2])
    """
    if len(samples) == 0:
        raise ValueError("collate: expected at least one sample, got an empty batch")
    first = samples[0]
    if isinstance(first, Tensor):
        return collate_numpy([s.data for s in samples])
    if isinstance(first, np.ndarray):
        shapes = {s.shape for s in samples}
        if len(shapes) > 1:
            raise ValueError(f"collate: samples must have equal shapes to be stacked, got "
                             f"different shapes {sorted(shapes)}; for images of different "
                             f"sizes, resize them to one size (ImageFolder(..., size=(h, w)), "
                             f"or a Resize / CenterCrop / RandomResizedCrop transform)")
        return np.stack(samples)
    if isinstance(first, np.generic):
        return np.array(samples, dtype=first.dtype)
    if isinstance(first, bool):
        return np.array(samples, dtype=np.bool_)
    if isinstance(first, int):
        return np.array(samples, dtype=np.int64)
    if isinstance(first, float):
        return np.array(samples, dtype=np.float32)
    if isinstance(first, str | bytes) or first is None:
        return list(samples)
    if isinstance(first, Mapping):
        return {k: collate_numpy([s[k] for s in samples]) for k in first}
    if isinstance(first, tuple | list):
        n = len(first)
        if any(len(s) != n for s in samples):
            raise ValueError("collate: every sample must have the same number of elements, got "
                             f"{sorted({len(s) for s in samples})}")
        cols = [collate_numpy([s[i] for s in samples]) for i in range(n)]
        if hasattr(first, "_fields"):  # namedtuple
            return type(first)(*cols)
        return type(first)(cols) if isinstance(first, tuple) else cols
    raise TypeError(f"collate: don't know how to batch samples of type {type(first).__name__}; "
                    f"pass collate_fn=")


def _to_tensors(batch):
    if isinstance(batch, Tensor):
        return batch
    if isinstance(batch, np.ndarray):
        return Tensor(batch)
    if isinstance(batch, Mapping):
        return {k: _to_tensors(v) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*[_to_tensors(v) for v in batch])
    if isinstance(batch, tuple | list):
        return type(batch)(_to_tensors(v) for v in batch)
    return batch


def default_collate(samples: Sequence):
    """:func:`collate_numpy`, then every array becomes a :class:`~filterbank.Tensor`."""
    return _to_tensors(collate_numpy(samples))


def _generators_of(transform) -> list[np.random.Generator]:
    """Explicit generators owned by a (possibly composed) transform, in a stable order."""
    out = []
    stack = [transform]
    while stack:
        t = stack.pop(0)
        g = getattr(t, "generator", None)
        if isinstance(g, np.random.Generator) and all(g is not o for o in out):
            out.append(g)
        stack.extend(getattr(t, "transforms", ()) or ())
    return out


class DataLoader:
    """Iterate over a data set in (optionally shuffled) batches.

    Each epoch draws one permutation from the loader's own generator; the batch ``transform``
    (data augmentation) draws from the same generator unless a transform has its own. Batches
    are Tensors (NumPy arrays with ``as_numpy=True``), with the sample structure kept: a data
    set of ``(x, y)`` pairs gives ``(x_batch, y_batch)``.

    Args:
        dataset: a map-style data set (``__getitem__`` + ``__len__``); one with
            ``get_batch(indices)`` is fetched a whole batch at a time.
        batch_size: samples per batch (default 1).
        shuffle: draw a new order every epoch.
        drop_last: drop the last batch when it is smaller than ``batch_size``.
        collate_fn: turns a list of samples into a batch (default :func:`collate_numpy`
            followed by conversion to Tensors). When given, its output is used as is.
        generator: a ``np.random.Generator`` or an int seed. Default: a new generator seeded
            from the global one (``fb.manual_seed``) when the loader is created, so loaders are
            reproducible and later draws elsewhere do not change their order.
        prefetch: number of batches prepared ahead by a background thread (0: none). The
            thread draws only from the loader's generator, so results are identical to
            ``prefetch=0`` -- provided a custom (non-filterbank) transform does not draw from
            the global generator, which the training thread uses at the same time. An
            iterator left before its end stops its thread once it is dropped; its
            ``close()`` stops it at once (``Trainer`` closes its iterators itself).
        transform: a batch transform, applied to the inputs of every batch: the whole batch if
            it is one array, else its first element (tuple/list) or first value (dict).
        as_numpy: yield NumPy arrays instead of Tensors.
        sampler: an iterable of indices with ``__len__`` that gives the order of every epoch
            instead of ``shuffle`` (e.g. :class:`~filterbank.distributed.DistributedSampler`,
            one rank's shard); mutually exclusive with ``shuffle=True``.

    Example:
        >>> from filterbank.data import TensorDataset
        >>> ds = TensorDataset(np.arange(10, dtype=np.float32), np.arange(10))
        >>> loader = DataLoader(ds, batch_size=4, shuffle=True, generator=0)
        >>> [len(x) for x, y in loader]
        [4, 4, 2]
    """

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False,
                 drop_last: bool = False, collate_fn: Callable | None = None,
                 generator: np.random.Generator | int | None = None, prefetch: int = 0,
                 transform: Callable | None = None, as_numpy: bool = False, sampler=None):
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"DataLoader: expected a data set with __getitem__ and __len__, got "
                            f"{type(dataset).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) \
                or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if isinstance(prefetch, bool) or not isinstance(prefetch, int | np.integer) \
                or prefetch < 0:
            raise ValueError(f"DataLoader: prefetch must be an int >= 0, got {prefetch!r}")
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"DataLoader: collate_fn must be callable, got "
                            f"{type(collate_fn).__name__}")
        if transform is not None and not callable(transform):
            raise TypeError(f"DataLoader: transform must be callable, got "
                            f"{type(transform).__name__}")
        if sampler is not None:
            if shuffle:
                raise ValueError("DataLoader: sampler= gives the order, so shuffle must be False "
                                 "(a DistributedSampler shuffles itself: shuffle=True there)")
            if not hasattr(sampler, "__iter__") or not hasattr(sampler, "__len__"):
                raise TypeError(f"DataLoader: sampler must be an iterable of indices with "
                                f"__len__, got {type(sampler).__name__}")
        self.sampler = sampler
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.collate_fn = collate_fn
        self.prefetch = int(prefetch)
        self.transform = transform
        self.as_numpy = bool(as_numpy)
        if generator is None:  # its own generator, seeded from the global one
            seed = int(_random.default_generator().integers(0, 2**63 - 1))
            self.generator = np.random.default_rng(seed)
        else:
            self.generator = _random.seeded(generator, "DataLoader")

    def __len__(self) -> int:
        n = len(self.dataset) if self.sampler is None else len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    # ------------------------------------------------------------------------- state
    def state_dict(self) -> dict:
        """The generators' states (JSON-able), to continue the exact stream after a restart."""
        return {"generator": self.generator.bit_generator.state,
                "transform_generators": [g.bit_generator.state
                                         for g in _generators_of(self.transform)]}

    def load_state_dict(self, state: dict) -> None:
        gens = _generators_of(self.transform)
        saved = state.get("transform_generators", [])
        if len(saved) != len(gens):
            raise ValueError(f"DataLoader.load_state_dict: the state has {len(saved)} transform "
                             f"generators, this loader's transform has {len(gens)}")
        self.generator.bit_generator.state = state["generator"]
        for g, s in zip(gens, saved):
            g.bit_generator.state = s

    # --------------------------------------------------------------------- iteration
    def _batch_indices(self) -> list[np.ndarray]:
        if self.sampler is not None:
            order = np.fromiter(self.sampler, dtype=np.int64)
        else:
            n = len(self.dataset)
            order = self.generator.permutation(n) if self.shuffle else np.arange(n)
        n = len(order)
        stop = n - n % self.batch_size if self.drop_last else n
        return [order[i:i + self.batch_size] for i in range(0, stop, self.batch_size)]

    def _fetch(self, indices: np.ndarray):
        if self.collate_fn is None:
            get_batch = getattr(self.dataset, "get_batch", None)
            if get_batch is not None:
                batch = get_batch(indices)
            else:
                batch = collate_numpy([self.dataset[int(i)] for i in indices])
        else:
            batch = self.collate_fn([self.dataset[int(i)] for i in indices])
        if self.transform is not None:
            batch = self._apply_transform(batch)
        if self.collate_fn is None and not self.as_numpy:
            batch = _to_tensors(batch)
        return batch

    def _apply_transform(self, batch):
        from filterbank.data.transforms import Transform

        t = self.transform
        if isinstance(t, Transform):
            def fn(x):
                return t(x, generator=self.generator, batched=True)
        else:
            fn = t
        if isinstance(batch, np.ndarray | Tensor):
            return fn(batch)
        if isinstance(batch, Mapping):
            out = dict(batch)
            key = next(iter(out))
            out[key] = fn(out[key])
            return out
        if isinstance(batch, tuple | list):
            items = list(batch)
            items[0] = fn(items[0])
            if hasattr(batch, "_fields"):
                return type(batch)(*items)
            return type(batch)(items)
        return fn(batch)

    def __iter__(self):
        batches = self._batch_indices()  # drawn now, before any worker thread starts
        if self.prefetch == 0:
            return (self._fetch(idx) for idx in batches)
        return _PrefetchIterator(self, batches)

    def __repr__(self) -> str:
        return (f"DataLoader({type(self.dataset).__name__}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, prefetch={self.prefetch})")


_DONE = object()


def _put(q: queue.Queue, stop: threading.Event, item) -> bool:
    """Put ``item`` unless ``stop`` is set first (checked every 0.1 s while the queue is full)."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _produce(loader: DataLoader, batches: list[np.ndarray], q: queue.Queue,
             stop: threading.Event) -> None:
    # a plain function of the queue and the event: the thread must not hold the iterator,
    # or an abandoned iterator would never be collected and its thread never stopped
    try:
        for idx in batches:
            if stop.is_set() or not _put(q, stop, ("ok", loader._fetch(idx))):
                return
    except BaseException as e:  # re-raised in the consuming thread
        _put(q, stop, ("error", e))
        return
    _put(q, stop, ("done", _DONE))


def _stop_worker(stop: threading.Event, q: queue.Queue) -> None:
    """Tell the worker to stop and drop the batches it prepared (frees their memory and
    wakes a worker blocked on a full queue)."""
    stop.set()
    _drain(q)


def _drain(q: queue.Queue) -> None:
    while True:
        try:
            q.get_nowait()
        except queue.Empty:
            return


class _PrefetchIterator:
    """Runs ``loader._fetch`` in one background thread, ``prefetch`` batches ahead.

    One producer thread keeps the order (and the random draws) identical to ``prefetch=0``.
    The thread holds only the queue and a stop event, never the iterator: an iterator dropped
    before the end is collected, and its finalizer stops the thread; ``close()`` does it at
    once (``Trainer.fit`` calls it on every exit path).
    """

    def __init__(self, loader: DataLoader, batches: list[np.ndarray]):
        self._queue: queue.Queue = queue.Queue(maxsize=loader.prefetch)
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=_produce,
                                        args=(loader, batches, self._queue, self._stop),
                                        name="filterbank-prefetch", daemon=True)
        self._finalizer = weakref.finalize(self, _stop_worker, self._stop, self._queue)
        self._thread.start()

    def __iter__(self):
        return self

    def __next__(self):
        if self._finished:
            raise StopIteration
        kind, value = self._queue.get()
        if kind == "ok":
            return value
        self.close()
        if kind == "error":
            raise value
        raise StopIteration

    def close(self) -> None:
        """Stop the worker thread and free the batches it prepared (called on exhaustion and
        on errors; call it when leaving a loop early)."""
        self._finished = True
        self._finalizer()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
            _drain(self._queue)  # a batch the worker put while it was being stopped
