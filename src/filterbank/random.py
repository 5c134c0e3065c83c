"""One seeded source of randomness for the whole library.

Every random draw in filterbank (initialisation, dropout, shuffling, augmentation) comes from an
explicit :class:`numpy.random.Generator`: either one passed by the caller, or the global one that
:func:`manual_seed` resets.
"""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the global generator and return it (like ``torch.manual_seed``).

    The generator object stays the same (its state is replaced), so code that kept a
    reference from :func:`default_generator` follows the new seed too. The stream equals
    ``np.random.default_rng(seed)``'s.

    Args:
        seed: a non-negative int.

    Example:
        >>> import filterbank as fb
        >>> _ = fb.manual_seed(0); a = fb.randn(3)
        >>> _ = fb.manual_seed(0); b = fb.randn(3)
        >>> bool((a == b).numpy().all())
        True
    """
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool):
        raise TypeError(f"manual_seed: expected an int seed, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"manual_seed: expected a non-negative seed, got {seed}")
    _generator.bit_generator.state = np.random.PCG64(int(seed)).state
    return _generator


def default_generator() -> np.random.Generator:
    """The global generator used when no ``generator=`` is given."""
    return _generator


def get_rng_state() -> dict:
    """The global generator's state as a JSON-serialisable dict (for checkpoints)."""
    return _generator.bit_generator.state


def set_rng_state(state: dict) -> None:
    """Restore a state returned by :func:`get_rng_state`."""
    _generator.bit_generator.state = state


def seeded(generator: np.random.Generator | int | None, name: str) -> np.random.Generator:
    """:func:`resolve`, also accepting a non-negative int seed (a new generator seeded with
    it), as ``DataLoader(generator=0)`` and ``random_split(..., generator=0)`` do."""
    if isinstance(generator, int | np.integer) and not isinstance(generator, bool):
        if generator < 0:
            raise ValueError(f"{name}: an int seed must be non-negative, got {generator}")
        return np.random.default_rng(int(generator))
    if generator is not None and not isinstance(generator, np.random.Generator):
        raise TypeError(f"{name}: generator must be a np.random.Generator, an int seed or "
                        f"None, got {type(generator).__name__}")
    return resolve(generator)


def resolve(generator: np.random.Generator | None) -> np.random.Generator:
    """``generator`` itself, or the global generator when it is None. Every random draw in the
    library goes through here."""
    if generator is None:
        return _generator
    if not isinstance(generator, np.random.Generator):
        raise TypeError(
            f"expected generator to be a numpy.random.Generator or None, got "
            f"{type(generator).__name__}"
        )
    return generator
