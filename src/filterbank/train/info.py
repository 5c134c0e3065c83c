"""``filterbank summary`` and ``filterbank datasets``: describe zoo models and data sets."""

from __future__ import annotations

import os
from collections.abc import Sequence

from filterbank.data.datasets import available_datasets, canonical_name, get_dataset
from filterbank.nn.summary import check_input_bytes
from filterbank.train.recipe import (
    DEFAULT_INPUT,
    Log,
    build_model,
    dataset_names,
    model_kwargs,
    model_name,
)


def summary(model: str, input_size: Sequence[int] | None = None, num_classes: int = 10,
            model_args: dict | None = None, depth: int | None = None,
            batch_size: int | None = None, echo: Log = print) -> dict:
    """Print the layer table of a zoo model for one input of shape ``input_size`` (C, H, W).

    Args:
        model: zoo name.
        input_size: (C, H, W); default the model's usual input (:data:`DEFAULT_INPUT`,
            else 3x224x224). The model is fitted to it as in :func:`model_kwargs`.
        num_classes: outputs of the model.
        model_args: extra constructor arguments.
        depth: nesting depth of the rows shown (default: the summary's own).
        batch_size: show this batch size in the shapes (default ``-1``: any).

    Returns:
        the numbers of :func:`filterbank.nn.summary.summary`.

    Example:
        >>> summary("lenet5", echo=lambda s: None)["total_params"]
        61706
    """
    name = model_name(model)
    if input_size is None:
        input_size = DEFAULT_INPUT.get(name, (3, 224, 224))
    if len(input_size) != 3 or any(int(s) < 1 for s in input_size):
        raise ValueError(f"--input-size expects three positive ints C H W, got "
                         f"{list(input_size)}")
    c, h, w = (int(s) for s in input_size)
    if num_classes < 1:
        raise ValueError(f"--num-classes must be >= 1, got {num_classes}")
    # before the model: some are sized by their input (SimpleCNN's classifier)
    check_input_bytes((batch_size or 1, c, h, w))
    # a model too large to allocate is build_model's one-line ValueError
    net = build_model(name, model_kwargs(name, c, (h, w), num_classes, model_args),
                      "summary: ")
    options = {k: v for k, v in (("depth", depth), ("batch_size", batch_size)) if v is not None}
    return net.summary((c, h, w), includes_batch=False, print_fn=echo, **options)


def datasets(data_root: str | os.PathLike | None = None,
             download: Sequence[str] | None = None, echo: Log = print) -> list[dict]:
    """Print the registered data sets: where their files were found, sizes, classes.

    Args:
        data_root: folder searched first (and downloaded into).
        download: names of data sets to download first where missing (SHA-256 verified).
    """
    for name in download or ():
        key = canonical_name(name)
        if key not in dataset_names():
            raise ValueError(f"unknown data set {name!r} (choose from: "
                             f"{', '.join(dataset_names())})")
        for split in (True, False):
            get_dataset(key, train=split, root=data_root, download=True)
    rows = available_datasets(data_root)
    head = ["name", "found", "train", "test", "classes", "download", "description"]
    table = [[d["name"], d["found"] or "not found", f"{d['train_size']:,}",
              f"{d['test_size']:,}", str(d["num_classes"]), "yes" if d["downloadable"] else "no",
              d["description"]] for d in rows]
    widths = [max(len(r[i]) for r in [head, *table]) for i in range(len(head))]
    for r in [head, *table]:
        echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    from filterbank.data.datasets.download import search_dirs

    echo("searched: " + ", ".join(str(d) for d in search_dirs(data_root)) + " (and each data "
         "set's system folder); 'fashion-mnist' falls back to the embedded sample")
    return rows
