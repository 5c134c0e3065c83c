"""One seeded source of randomness for the whole library.

Every random draw in filterbank (initialisation, dropout, shuffling, augmentation) comes from an
explicit :class:`numpy.random.Generator`: either one passed by the caller, or the global one that
:func:`manual_seed` resets.
"""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Reset the global generator to ``seed`` and return it (like ``torch.manual_seed``)."""
    global _generator
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool):
        raise TypeError(f"manual_seed: expected an int seed, got {type(seed).__name__}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def default_generator() -> np.random.Generator:
    """The global generator used when no ``generator=`` is given."""
    return _generator


def get_rng_state() -> dict:
    """The global generator's state as a JSON-serialisable dict (for checkpoints)."""
    return _generator.bit_generator.state


def set_rng_state(state: dict) -> None:
    _generator.bit_generator.state = state


def resolve(generator: np.random.Generator | None) -> np.random.Generator:
    return _generator if generator is None else generator
