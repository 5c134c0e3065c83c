"""Where data sets live on disk, and verified, atomic downloads.

Data directories are searched in this order (:func:`search_dirs`):

1. an explicit ``root`` argument,
2. ``$FILTERBANK_DATA``,
3. ``~/.cache/filterbank``,
4. system directories a data set names (Debian's ``/usr/share/datasets/fashion-mnist`` from the
   package ``dataset-fashion-mnist``).

Downloads go to the first writable of 1-3 (:func:`download_dir`). :func:`download_url` streams a
file into a temporary file next to the destination, checks its SHA-256, fsyncs it and moves it
into place with ``os.replace``: the destination is either absent or complete and verified,
never half-written, even if the process is killed mid-download.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from filterbank.serialization import fsync_dir as _fsync_dir

#: Environment variable naming a data directory (searched after an explicit ``root``).
ENV_VAR = "FILTERBANK_DATA"
_CHUNK = 1 << 20


def cache_dir() -> Path:
    """``~/.cache/filterbank`` (``$XDG_CACHE_HOME/filterbank`` when that is set)."""
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "filterbank"


def search_dirs(root: str | os.PathLike | None = None,
                system_dirs: Sequence[str | os.PathLike] = ()) -> list[Path]:
    """The directories searched for data, in order (see the module docstring)."""
    dirs: list[Path] = []
    if root is not None:
        dirs.append(Path(root).expanduser())
    env = os.environ.get(ENV_VAR)
    if env:
        dirs.append(Path(env).expanduser())
    dirs.append(cache_dir())
    dirs.extend(Path(d) for d in system_dirs)
    out: list[Path] = []
    for d in dirs:
        if d not in out:
            out.append(d)
    return out


def download_dir(root: str | os.PathLike | None = None) -> Path:
    """Where downloads go: ``root`` if given, else ``$FILTERBANK_DATA``, else the cache."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else cache_dir()


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


class DownloadError(RuntimeError):
    """Every mirror failed (network error or checksum mismatch); nothing was written."""


def _fetch(url: str, dest: Path, sha256: str | None, progress: bool, timeout: float) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            total = resp.headers.get("Content-Length")
            with tqdm(total=int(total) if total else None, unit="B", unit_scale=True,
                      unit_divisor=1024, desc=dest.name, disable=not progress,
                      leave=False) as bar:
                for chunk in iter(lambda: resp.read(_CHUNK), b""):
                    out.write(chunk)
                    h.update(chunk)
                    bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        got = h.hexdigest()
        if sha256 is not None and got != sha256.lower():
            raise ValueError(f"SHA-256 mismatch: expected {sha256}, got {got}")
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp makes 0600; give the usual mode
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(dest.parent)


def download_url(urls: str | Sequence[str], dest: str | os.PathLike, sha256: str | None = None,
                 progress: bool = True, timeout: float = 60.0) -> Path:
    """Download a file, trying mirrors in order, and move it into place once verified.

    Each attempt streams into ``.<name>.<random>.part`` in the destination directory (same file
    system, so the final ``os.replace`` is atomic), hashing as it goes, with a tqdm progress
    bar. A network error or a SHA-256 mismatch discards the partial file and moves on to the
    next mirror.

    Args:
        urls: one URL or mirror URLs tried in order.
        dest: the final path; its directory is created if needed.
        sha256: expected hex digest, or None to skip the check (not recommended).
        progress: show a progress bar.
        timeout: socket timeout in seconds.

    Returns:
        ``dest`` as a Path.

    Raises:
        DownloadError: every mirror failed; lists each URL with its error. ``dest`` is
            untouched (an existing file there is neither removed nor replaced).

    Example:
        >>> download_url(["https://example.org/a.gz"], "data/a.gz",
        ...              sha256="...")  # doctest: +SKIP
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    urls = [urls] if isinstance(urls, str) else list(urls)
    if not urls:
        raise ValueError(f"download_url({dest.name}): expected at least one URL, got none")
    errors = []
    for url in urls:
        try:
            _fetch(url, dest, sha256, progress, timeout)
            return dest
        except (urllib.error.URLError, OSError, ValueError) as e:
            errors.append(f"  {url}: {e}")
    raise DownloadError(f"could not download {dest.name} from any mirror:\n" + "\n".join(errors))
