"""How a convolution's batch is cut into chunks and the chunks dealt to worker threads.

``KEEP_BYTES`` is the memory budget for intermediates kept from forward for the weight
gradient; it is read at call time (``chunking.KEEP_BYTES``), so tests can set it to 0 to make
every algorithm rebuild in backward.
"""

from __future__ import annotations

from collections.abc import Callable

from filterbank import _parallel, _xp

#: Intermediates (im2col columns, Winograd input tiles, row-Toeplitz rows) up to this size are
#: kept from forward for the weight gradient; bigger ones are rebuilt in backward (they are
#: 2-27x the input).
KEEP_BYTES = 1 << 26


def _chunk_ranges(total: int, size: int, workers: int) -> tuple[list[tuple[int, int]], int]:
    """Split range(total) into near-equal chunks of at most about ``size``, their number a
    multiple of ``workers`` when there is enough to go round; returns (ranges, largest)."""
    count = -(-total // max(1, size))
    if total >= workers > 1:
        count = -(-count // workers) * workers
    count = max(1, min(count, total))
    bounds = [total * i // count for i in range(count + 1)]
    ranges = [(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    return ranges, max((b - a for a, b in ranges), default=0)


def _queue(items: list, n: int) -> list:
    """Deal ``items`` to ``n`` workers round-robin, a fixed share each.

    A fixed assignment (not a shared queue) keeps gradients bit-reproducible: each worker sums
    dW/db over its own chunks, so which chunks a worker gets must not depend on thread timing
    (float32 addition is order-sensitive). The chunk count is a multiple of the worker count,
    so the shares are balanced anyway."""
    return [items[i::n] for i in range(n)]



def _worker_buffers(shapes: dict, dtype, like, n: int) -> list[dict]:
    """One set of scratch buffers ``{name: shape}`` per worker, where ``like`` lives (from the
    reusing workspace on the host)."""
    return [{k: _xp.empty(s, dtype, like) for k, s in shapes.items()} for _ in range(n)]


def _run_chunks(chunks: list, n: int, body: Callable[[int, int, int, int], object]) -> None:
    """``body(worker, slot, n0, n1)`` for every chunk ``(n0, n1)`` (``slot``: its index in
    ``chunks``), each of ``n`` workers taking its fixed :func:`_queue` share, on
    :func:`filterbank._parallel.run_tasks` (inline when ``n`` is 1)."""
    parts = _queue(list(enumerate(chunks)), n)

    def task(i):
        for slot, (n0, n1) in parts[i]:
            body(i, slot, n0, n1)

    _parallel.run_tasks(task, n)
