"""Make the embedded Fashion-MNIST sample shipped in ``filterbank/data/datasets/_embedded/``.

A stratified sample: ``--per-class-train`` (600) training and ``--per-class-test`` (100) test
images of each of the 10 classes, drawn without replacement with a fixed seed from the full
data set, kept in the original order, written as gzip-compressed IDX files (no time stamp in the
gzip header, so the output is byte-for-byte reproducible) with the data set's licence notice.

    python tools/make_embedded_sample.py                  # full data found as FashionMNIST() does
    python tools/make_embedded_sample.py --root DIR --seed 0 --out DIR
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from filterbank.data.datasets.fashion_mnist import (
    _FILES,
    EMBEDDED_DIR,
    SAMPLE_PREFIX,
    FashionMNIST,
)
from filterbank.data.datasets.idx import write_idx

NOTICE = """\
Fashion-MNIST sample
====================

The files fashion-mnist-sample-*-idx?-ubyte.gz in this directory are a stratified sample of
Fashion-MNIST (https://github.com/zalandoresearch/fashion-mnist): {n_train} training images
({per_train} per class) and {n_test} test images ({per_test} per class), 28x28 uint8, in IDX
format, drawn with seed {seed} by tools/make_embedded_sample.py from the full data set.
Class names: {classes}.

Source files (SHA-256 of the decompressed IDX data):
{sources}
Sample indices into the source splits (SHA-256 of the int64 index arrays, little-endian):
  train: {idx_train}
  test:  {idx_test}

Reference: Han Xiao, Kashif Rasul, Roland Vollgraf. Fashion-MNIST: a Novel Image Dataset for
Benchmarking Machine Learning Algorithms. arXiv:1708.07747, 2017.

Fashion-MNIST is distributed under the MIT licence:

The MIT License (MIT)

Copyright (c) 2017 Zalando SE, https://tech.zalando.com

Permission is hereby granted, free of charge, to any person obtaining a copy of this software
and associated documentation files (the "Software"), to deal in the Software without
restriction, including without limitation the rights to use, copy, modify, merge, publish,
distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING
BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""


def stratified_indices(labels: np.ndarray, per_class: int, rng: np.random.Generator
                       ) -> np.ndarray:
    """``per_class`` indices of each class, without replacement, sorted (original order)."""
    picks = []
    for c in np.unique(labels):
        pool = np.flatnonzero(labels == c)
        if len(pool) < per_class:
            raise ValueError(f"class {c} has only {len(pool)} examples, need {per_class}")
        picks.append(rng.choice(pool, size=per_class, replace=False))
    return np.sort(np.concatenate(picks)).astype(np.int64)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=None, help="directory holding the full data set")
    ap.add_argument("--out", default=str(EMBEDDED_DIR), help="output directory")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-class-train", type=int, default=600)
    ap.add_argument("--per-class-test", type=int, default=100)
    args = ap.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    sources, digests = [], {}
    for train, per_class in ((True, args.per_class_train), (False, args.per_class_test)):
        full = FashionMNIST(root=args.root, train=train)
        files = FashionMNIST.find(args.root, train)
        for f, arr in zip(files, (full.data, full.targets.astype(np.uint8))):
            sources.append(f"  {f.name}: {hashlib.sha256(_idx_payload(arr)).hexdigest()}")
        idx = stratified_indices(full.targets, per_class, rng)
        digests[train] = hashlib.sha256(idx.astype("<i8").tobytes()).hexdigest()
        images_stem, labels_stem = _FILES[train]
        write_idx(out / f"{SAMPLE_PREFIX}{images_stem}.gz", full.data[idx])
        write_idx(out / f"{SAMPLE_PREFIX}{labels_stem}.gz", full.targets[idx].astype(np.uint8))
        print(f"{'train' if train else 'test'}: {len(idx)} images from {files[0]}")
    (out / "NOTICE").write_text(NOTICE.format(
        n_train=10 * args.per_class_train, per_train=args.per_class_train,
        n_test=10 * args.per_class_test, per_test=args.per_class_test, seed=args.seed,
        classes=", ".join(FashionMNIST.classes), sources="\n".join(sources),
        idx_train=digests[True], idx_test=digests[False]))
    total = sum(p.stat().st_size for p in out.iterdir())
    print(f"wrote {out} ({total / 1e6:.2f} MB)")


def _idx_payload(arr: np.ndarray) -> bytes:
    """The uncompressed IDX bytes of a uint8 array (what the .gz files decompress to)."""
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(
        int(s).to_bytes(4, "big") for s in arr.shape)
    return header + np.ascontiguousarray(arr, dtype=np.uint8).tobytes()


if __name__ == "__main__":
    main()
