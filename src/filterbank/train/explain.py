"""What a trained run learned, from the command line: ``explain`` (saliency, Grad-CAM, feature
maps, filters, activation maximisation), ``dream`` (DeepDream), ``embed`` (descriptors to a
.npy file), ``probe`` (a linear probe on frozen features, trained vs untrained network) and
``filter`` (a classic kernel on an image). Each writes PNGs and prints where."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

import filterbank as fb
from filterbank import nn
from filterbank.train.embed import LinearProbe, embed, nearest, penultimate_layer
from filterbank.train.inference import image_files, load_images
from filterbank.train.recipe import (
    Log,
    _images,
    _limit,
    _stderr,
    image_geometry,
    load_data,
    make_transform,
)
from filterbank.train.runs import load_run_model, run_folder, untrained_model, write_json

METHODS = ("saliency", "gradcam", "featuremaps", "filters", "maximize")
SPLITS = ("train", "test")


# ------------------------------------------------------------------------------ helpers
def _folder(ckpt: Path, out, sub: str | None = "explain") -> Path:
    if out is not None:
        folder = Path(out)
    else:
        run = run_folder(ckpt)
        folder = run / sub if sub else run
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _classify_only(config: dict, command: str) -> None:
    task = config.get("task", "classify")
    if task != "classify":
        raise ValueError(f"{command}: works on classification runs; this run's task is "
                         f"{task!r}")


def resolve_target(target, classes: Sequence[str]) -> int | None:
    """``--target``: None, a class index (int or digits) or a class name (case-insensitive)."""
    if target is None:
        return None
    k = len(classes)
    text = str(target).strip()
    if text.lstrip("-").isdigit():
        t = int(text)
        if not 0 <= t < k:
            raise ValueError(f"--target: class {t} is out of range for a model with {k} "
                             f"classes (0 to {k - 1})")
        return t
    names = [str(c).lower() for c in classes]
    if text.lower() in names:
        return names.index(text.lower())
    raise ValueError(f"--target: expected a class index (0 to {k - 1}) or a class name, got "
                     f"{text!r}; the classes are: {', '.join(map(str, classes))}")


def _load_inputs(paths, config: dict) -> tuple[list[Path], np.ndarray, np.ndarray]:
    """(files, pixels (N, H, W, C) float32 in [0, 1], model inputs (N, C, H, W) float32)."""
    pre = dict(config["preprocessing"], resize=False)  # Pillow resizes to the model's size
    files = image_files(paths)
    images = load_images(files, pre)
    x = make_transform(pre)(images, batched=True)
    x = np.ascontiguousarray(np.asarray(x.data if isinstance(x, fb.Tensor) else x), np.float32)
    return files, images.astype(np.float32) / 255, x


def _stems(files: Sequence[Path]) -> list[str]:
    used: set[str] = set()
    out = []
    for f in files:
        stem = f.stem
        while stem in used:  # the same name in two folders
            stem += "_"
        used.add(stem)
        out.append(stem)
    return out


def _probs(net, x: np.ndarray) -> np.ndarray:
    with fb.no_grad():
        logits = np.asarray(net(fb.Tensor(x)).data, np.float64)
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def last_feature_map(net: nn.Module, x: np.ndarray) -> str:
    """The name of the last module (in call order) whose output is a 4-D feature map: the
    default Grad-CAM layer (the output of the last convolutional block)."""
    seen: list[str] = []
    handles = []
    for name, m in net.named_modules():
        if name and not m._modules:  # leaves only: a block's output is its last leaf's
            def hook(mod, args, out, name=name):
                if isinstance(out, fb.Tensor) and out.ndim == 4:
                    seen.append(name)
            handles.append(m.register_forward_hook(hook))
    try:
        with fb.no_grad():
            net(fb.Tensor(x[:1]))
    finally:
        for h in handles:
            h.remove()
    if not seen:
        raise ValueError(f"gradcam: {type(net).__name__} has no layer with a 4-D (N, C, H, W) "
                         f"output; Grad-CAM needs a convolutional layer")
    return seen[-1]


def _conv_layer(net: nn.Module, layer: str | None, what: str) -> str:
    from filterbank.nn.utils import find_module
    from filterbank.viz import conv_layers

    convs = conv_layers(net)
    if layer is None:
        if not convs:
            raise ValueError(f"{what}: {type(net).__name__} has no Conv2d layer")
        return convs[-1]
    name, m = find_module(net, layer, "--layer")
    if not isinstance(m, nn.Conv2d) and what == "filters":
        raise ValueError(f"--layer {name!r} is a {type(m).__name__}, not a convolution; "
                         f"the Conv2d layers are: {', '.join(convs)}")
    return name


# ------------------------------------------------------------------------------ explain
def explain(run: str | os.PathLike, images: Sequence[str | os.PathLike] = (),
            method: str = "saliency", layers: Sequence[str] | None = None, target=None,
            out: str | os.PathLike | None = None, channels: int = 16,
            echo: Log = print) -> list[Path]:
    """Pictures of why a run's model decides what it does, one PNG per image (per layer for
    ``filters`` and ``maximize``), written into ``out`` (default ``<run>/explain``).

    Methods: ``saliency`` (input gradient of the target class's score: image, map, overlay),
    ``gradcam`` (Grad-CAM at a convolutional layer, by default the last 4-D feature map),
    ``featuremaps`` (the activations at some layers, by default every Conv2d), ``filters``
    (the kernels of some Conv2d layers, by default all; no images needed) and ``maximize``
    (activation maximisation of the first ``channels`` channels of a layer, by default the
    last Conv2d; no images needed).

    Args:
        run: run folder or checkpoint.
        images: image files or folders (converted to the model's channels and size).
        method: one of :data:`METHODS`.
        layers: layer names (``named_modules()``), or None for the method's default.
        target: the class to explain: an index, a class name or None (the predicted one).
        out: the folder of the PNGs.
        channels: channels drawn by ``maximize``.

    Returns:
        the PNG paths.
    """
    from filterbank import interpret, viz
    from filterbank.nn.utils import capture_outputs, find_module

    if method not in METHODS:
        raise ValueError(f"--method: expected one of {', '.join(METHODS)}, got {method!r}")
    net, config, ckpt = load_run_model(run)
    _classify_only(config, "explain")
    classes = config["classes"]
    pre = config["preprocessing"]
    t = resolve_target(target, classes)
    folder = _folder(ckpt, out)
    written: list[Path] = []
    layers = list(layers or [])
    for name in layers:
        find_module(net, name, "--layer")

    if method in ("filters", "maximize"):
        names = ([_conv_layer(net, n, method) for n in layers] if layers
                 else (viz.conv_layers(net) if method == "filters"
                       else [_conv_layer(net, None, method)]))
        if not names:
            raise ValueError(f"{method}: {type(net).__name__} has no Conv2d layer")
        for name in names:
            path = folder / f"{method}-{name}.png"
            if method == "filters":
                viz.plot_conv_filters(net, name, path)
            else:
                size = (pre["channels"], *pre["size"])
                chans = list(range(min(channels, _channels_of(net, name, size))))
                imgs = np.stack([interpret.activation_maximization(net, name, c, size=size,
                                                                   steps=60)
                                 for c in chans])
                viz.plot_activation_maximization(imgs, chans, path, layer=name,
                                                 mean=pre["mean"], std=pre["std"])
            written.append(path)
            echo(f"wrote {path}")
        return written

    if not images:
        raise ValueError(f"explain --method {method}: no images given (filterbank explain RUN "
                         f"IMAGE ...)")
    files, pixels, x = _load_inputs(images, config)
    probs = _probs(net, x)
    pred = probs.argmax(axis=1)
    stems = _stems(files)

    def said(i: int) -> str:
        return f"predicted {classes[pred[i]]} ({probs[i, pred[i]]:.0%})"

    if method == "saliency":
        grads = interpret.saliency(net, x, target=t)
        for i, stem in enumerate(stems):
            ti = pred[i] if t is None else t
            path = folder / f"{stem}-saliency.png"
            viz.plot_attribution(pixels[i], viz.saliency_heatmap(grads[i]), path,
                                 map_title="saliency |d score / d pixel|",
                                 title=f"{files[i].name}: {said(i)}; saliency of class "
                                       f"'{classes[ti]}'")
            written.append(path)
    elif method == "gradcam":
        names = layers or [last_feature_map(net, x)]
        for name in names:
            cam = interpret.grad_cam(net, name, x, target=t)
            for i, stem in enumerate(stems):
                path = folder / f"{stem}-gradcam-{name}.png"
                h, w = cam.raw.shape[1:]
                viz.plot_attribution(pixels[i], cam.heatmap[i], path,
                                     map_title=f"Grad-CAM at {name} ({h}x{w}, upsampled)",
                                     title=f"{files[i].name}: {said(i)}; Grad-CAM of class "
                                           f"'{classes[cam.target[i]]}'")
                written.append(path)
    else:  # featuremaps
        names = layers or viz.conv_layers(net)
        named = dict(net.named_modules())
        for i, stem in enumerate(stems):
            net.eval()
            with fb.no_grad():
                got = capture_outputs(net, {n: named[n] for n in names}, fb.Tensor(x[i:i + 1]))
            missing = [n for n in names if n not in got]
            if missing:
                raise ValueError(f"featuremaps: the layers {missing} were not called by "
                                 f"{type(net).__name__}.forward")
            path = folder / f"{stem}-featuremaps.png"
            viz.plot_feature_maps({n: got[n] for n in names}, path, image=pixels[i],
                                  title=f"{files[i].name}: {said(i)}")
            written.append(path)
    for p in written:
        echo(f"wrote {p}")
    return written


def _channels_of(net, name: str, size) -> int:
    from filterbank.nn.utils import capture_outputs

    named = dict(net.named_modules())
    with fb.no_grad():
        got = capture_outputs(net, {name: named[name]}, fb.zeros(1, *size))
    return int(got[name].shape[1])


# -------------------------------------------------------------------------------- dream
def _prefix_network(net: nn.Module, name: str, x: np.ndarray) -> nn.Module | None:
    """The model's top-level children up to the one holding ``name``, as a Sequential (the
    layer names kept), when that gives the layer's output exactly as the model does; else
    None. It lets DeepDream shrink the image for a model whose forward insists on its own
    input size (a convolution takes any size)."""
    from collections import OrderedDict

    from filterbank.nn.utils import capture_outputs

    top = name.split(".")[0]
    kids: OrderedDict[str, nn.Module] = OrderedDict()
    for k, m in net.named_children():
        kids[k] = m
        if k == top:
            break
    else:
        return None
    prefix = nn.Sequential(kids)
    named = dict(net.named_modules())
    try:
        with fb.no_grad():
            a = capture_outputs(net, {name: named[name]}, fb.Tensor(x)).get(name)
            b = capture_outputs(prefix, {name: named[name]}, fb.Tensor(x)).get(name)
    except Exception:
        return None
    if a is None or b is None or a.shape != b.shape or not np.allclose(a.data, b.data,
                                                                        atol=1e-5):
        return None
    return prefix


def _takes_size(net: nn.Module, name: str, shape) -> bool:
    from filterbank.nn.utils import capture_outputs

    named = dict(net.named_modules())
    try:
        with fb.no_grad():
            capture_outputs(net, {name: named[name]}, fb.zeros(*shape))
    except Exception:
        return False
    return True


def dream(run: str | os.PathLike, image: str | os.PathLike | None = None,
          layer: str | None = None, seed: int = 0, octaves: int = 3, steps: int = 20,
          step_size: float = 0.01, out: str | os.PathLike | None = None,
          echo: Log = print) -> Path:
    """DeepDream on an image (or on seeded grey noise) at a layer of a run's model (default:
    its last Conv2d); writes ``dream-<image or noise>-<layer>.png`` with the start and every
    octave into ``out`` (default ``<run>/explain``).

    The image is kept in the valid pixel range ([0, 1] before normalisation) after every
    step; ``step_size`` is in pixel units (a fraction of the full range) per step, on
    average. A model whose forward refuses smaller images dreams through its top-level
    children up to the layer (checked to give the same activations); if that is not
    possible, only one octave runs.
    """
    from filterbank import interpret, viz

    net, config, ckpt = load_run_model(run)
    _classify_only(config, "dream")
    pre = config["preprocessing"]
    name = _conv_layer(net, layer, "dream")
    if image is not None:
        files, _, x = _load_inputs([image], config)
        if len(files) != 1:
            raise ValueError(f"dream: expected one image, got a folder of {len(files)}")
        stem = files[0].stem
    else:
        rng = np.random.default_rng(seed)
        h, w = pre["size"]
        noise = np.clip(0.5 + 0.1 * rng.standard_normal((1, h, w, pre["channels"])), 0, 1)
        x = make_transform(dict(pre, resize=False))((noise * 255).round().astype(np.uint8),
                                                    batched=True)
        x = np.asarray(x.data if isinstance(x, fb.Tensor) else x, np.float32)
        stem = f"noise{seed}"
    mean = np.asarray(pre["mean"], np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(pre["std"], np.float32).reshape(1, -1, 1, 1)
    model = net
    small = (1, x.shape[1], max(1, round(x.shape[2] / 1.4)), max(1, round(x.shape[3] / 1.4)))
    if octaves > 1 and not _takes_size(net, name, small):
        model = _prefix_network(net, name, x)
        if model is None:
            echo(f"dream: {type(net).__name__} takes only {x.shape[2]}x{x.shape[3]} images; "
                 f"running one octave")
            model, octaves = net, 1
    _, levels = interpret.deep_dream(
        model, x, name, octaves=octaves, steps=steps,
        step_size=float(step_size / std.mean()), jitter=max(1, x.shape[2] // 8), seed=seed,
        clip=(-mean / std, (1 - mean) / std), return_octaves=True)
    folder = _folder(ckpt, out)
    path = folder / f"dream-{stem}-{name}.png"
    viz.plot_dream(levels, path, original=x[0], mean=pre["mean"], std=pre["std"],
                   title=f"DeepDream at {name}: {octaves} octave(s) x {steps} steps, "
                         f"seed {seed}")
    echo(f"wrote {path}")
    return path


# -------------------------------------------------------------------------- embed, probe
def _split_data(config: dict, dataset: str, data_root, download: bool, log: Log):
    pre = config["preprocessing"]
    resolved, train, _, test = load_data(dataset, data_root, download, pre["size"], log)
    classes = config["classes"]
    for ds in (train, test):
        channels, size = image_geometry(ds)
        if channels != pre["channels"] or len(ds.classes) != len(classes):
            raise ValueError(f"data set {resolved!r} ({channels} channel(s), {len(ds.classes)} "
                             f"classes) does not fit the run's model ({pre['channels']} "
                             f"channel(s), {len(classes)} classes)")
    return resolved, train, test


def _features_of(net, ds, pre: dict, limit: int | None, layer, batch_size: int = 256,
                 normalize: bool = False):
    """(features, labels, indices) of a split: ``limit`` images drawn with seed 0."""
    _, size = image_geometry(ds)
    transform = make_transform(dict(pre, resize=tuple(size) != tuple(pre["size"])))
    data = _images(ds)
    idx = np.sort(_limit(len(data), limit, np.random.default_rng(0)))

    def batches():
        for s in range(0, len(idx), batch_size):
            yield transform(data[idx[s:s + batch_size]], batched=True)

    feats = embed(net, batches(), layer=layer, normalize=normalize)
    return feats, np.asarray(ds.targets)[idx].astype(np.int64), idx


def _layer_label(net, layer) -> str:
    if layer is not None:
        return str(layer)
    return f"the input of {penultimate_layer(net)[0]}"


def embed_run(run: str | os.PathLike, dataset: str, out: str | os.PathLike,
              layer: str | None = None, split: str = "test", limit: int | None = None,
              normalize: bool = False, data_root=None, download: bool = False,
              log: Log = _stderr, echo: Log = print) -> np.ndarray:
    """Features of a data set's ``split`` from a run's model (see
    :func:`filterbank.train.embed`), saved with ``np.save`` (no pickle) to ``out`` (a .npy
    file) and the labels beside it (``<out>-labels.npy``)."""
    if split not in SPLITS:
        raise ValueError(f"--split: expected train or test, got {split!r}")
    out = Path(out)
    if out.suffix.lower() != ".npy":
        raise ValueError(f"--out: expected a .npy file, got {str(out)!r}")
    net, config, _ = load_run_model(run)
    _classify_only(config, "embed")
    if layer is not None:
        from filterbank.nn.utils import find_module

        find_module(net, layer, "--layer")
    resolved, train, test = _split_data(config, dataset, data_root, download, log)
    feats, labels, _ = _features_of(net, train if split == "train" else test,
                                    config["preprocessing"], limit, layer, normalize=normalize)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, feats.astype(np.float32), allow_pickle=False)
    labels_path = out.with_name(out.stem + "-labels.npy")
    np.save(labels_path, labels, allow_pickle=False)
    echo(f"{feats.shape[0]:,} x {feats.shape[1]:,} features ({_layer_label(net, layer)}) of "
         f"the {split} split of {resolved}: {out} (labels: {labels_path})")
    return feats


def probe(run: str | os.PathLike, dataset: str, layer: str | None = None,
          limit: int | None = None, out: str | os.PathLike | None = None, k: int = 5,
          data_root=None, download: bool = False, log: Log = _stderr,
          echo: Log = print) -> dict:
    """A linear probe (:class:`~filterbank.train.LinearProbe`) on the frozen features of the
    training split, scored on the test split, for the run's trained network and for an
    untrained network of the same architecture (initialised with the run's seed); also the
    ``k``-nearest-neighbour accuracy (majority vote of the training images most similar by
    cosine). Writes ``probe-<dataset>.json`` and ``retrieval-<dataset>.png`` (test images
    and their nearest training images, trained features) into ``out`` (default: the run
    folder)."""
    from filterbank import viz

    net, config, ckpt = load_run_model(run)
    _classify_only(config, "probe")
    if layer is not None:
        from filterbank.nn.utils import find_module

        find_module(net, layer, "--layer")
    pre = config["preprocessing"]
    classes = config["classes"]
    resolved, train, test = _split_data(config, dataset, data_root, download, log)
    seed = int(config.get("training", {}).get("seed", 0) or 0)
    fb.manual_seed(seed)
    fresh = untrained_model(ckpt, config)
    rows = {}
    keep = {}
    for label, model in (("trained", net), ("untrained", fresh)):
        ftr, ytr, itr = _features_of(model, train, pre, limit, layer)
        fte, yte, ite = _features_of(model, test, pre, limit, layer)
        p = LinearProbe(seed=seed).fit(ftr, ytr, num_classes=len(classes))
        kk = min(k, len(ftr))
        nn_idx, nn_sim = nearest(fte, ftr, kk)
        # majority vote, ties to the smaller class: one-hot counts (Q, K), no per-row loop
        votes = np.eye(len(classes), dtype=np.int32)[ytr[nn_idx]].sum(axis=1).argmax(axis=1)
        rows[label] = {"train_accuracy": p.score(ftr, ytr), "test_accuracy": p.score(fte, yte),
                       f"knn{kk}_test_accuracy": float(np.mean(votes == yte)),
                       "features": int(ftr.shape[1])}
        if label == "trained":
            keep = dict(ytr=ytr, yte=yte, itr=itr, ite=ite, idx=nn_idx, sim=nn_sim)
    folder = _folder(ckpt, out, None)
    what = _layer_label(net, layer)
    echo(f"linear probe on frozen features ({what}, {rows['trained']['features']:,} "
         f"dimensions): {len(keep['ytr']):,} training / {len(keep['yte']):,} test images of "
         f"{resolved}")
    knn = f"knn{min(k, len(keep['ytr']))}_test_accuracy"
    echo(f"{'network':<26}{'probe train acc':>16}{'probe test acc':>16}"
         f"{f'{k}-NN test acc':>16}")
    for label in ("trained", "untrained"):
        r = rows[label]
        name = "trained (this run)" if label == "trained" else f"untrained (seed {seed})"
        echo(f"{name:<26}{r['train_accuracy']:>16.4f}{r['test_accuracy']:>16.4f}"
             f"{r[knn]:>16.4f}")
    json_path = folder / f"probe-{resolved}.json"
    write_json(json_path, {"dataset": resolved, "layer": what, "train_images": len(keep["ytr"]),
                           "test_images": len(keep["yte"]), "seed": seed, **rows})
    echo(f"results: {json_path}")
    # the retrieval picture: one test image of each of the first classes, with neighbours
    yte, ite, itr = keep["yte"], keep["ite"], keep["itr"]
    rows_q = [int(np.flatnonzero(yte == c)[0]) for c in range(len(classes))
              if np.any(yte == c)][:6]
    if rows_q:
        test_px = _images(test)[ite[rows_q]].astype(np.float32) / 255
        train_px = _images(train)[itr[keep["idx"][rows_q]]].astype(np.float32) / 255
        if test_px.ndim == 3:
            test_px, train_px = test_px[..., None], train_px[..., None]
        png = folder / f"retrieval-{resolved}.png"
        viz.plot_retrieval(test_px, train_px, keep["sim"][rows_q], png,
                           query_labels=yte[rows_q], neighbour_labels=keep["ytr"][
                               keep["idx"][rows_q]], classes=classes,
                           title=f"test images and their {keep['idx'].shape[1]} nearest "
                                 f"training images (cosine, {what})")
        echo(f"retrieval: {png}")
    return rows


# ------------------------------------------------------------------------------- filter
def filter_image(image: str | os.PathLike, kernel: str | None = None,
                 magnitude: bool = False, out: str | os.PathLike | None = None,
                 size: int | None = None, sigma: float | None = None,
                 padding_mode: str = "reflect", max_side: int = 1024,
                 echo: Log = print) -> Path:
    """A classic kernel (``functional.KERNELS``) or the Sobel gradient magnitude on an image
    file; writes image, kernel and result side by side to ``out`` (default
    ``<image stem>-<kernel>.png`` in the current folder).

    Zero-sum kernels (edges) and the magnitude work on the grey image; the others on each
    colour channel. Images larger than ``max_side`` pixels are shrunk first.
    """
    from PIL import Image

    from filterbank.data.datasets.image_folder import load_image
    from filterbank.functional.kernels import KERNELS, apply_kernel, get_kernel, gradient_magnitude
    from filterbank.viz import plot_kernel

    if (kernel is None) == (not magnitude):
        raise ValueError("filter: give --kernel NAME or --magnitude (one of them)")
    if kernel is not None and kernel not in KERNELS:
        raise ValueError(f"--kernel: expected one of {', '.join(KERNELS)}, got {kernel!r}")
    kwargs = {}
    if size is not None:
        if kernel not in ("gaussian", "box_blur"):
            raise ValueError(f"--kernel-size: only for gaussian and box_blur, not {kernel!r}")
        kwargs["size"] = size
    if sigma is not None:
        if kernel != "gaussian":
            raise ValueError(f"--sigma: only for gaussian, not {kernel!r}")
        kwargs["sigma"] = sigma
    weights = None if magnitude else np.asarray(get_kernel(kernel, **kwargs), np.float32)
    files = image_files([image])
    if len(files) != 1:
        raise ValueError(f"filter: expected one image, got a folder of {len(files)}")
    path = files[0]
    try:
        with Image.open(path) as im:
            w, h = im.size
            grey = im.mode in ("1", "L", "LA", "I", "I;16", "F")
    except OSError as e:
        raise ValueError(f"{path}: not an image Pillow can read ({e})") from e
    scale = min(1.0, max_side / max(w, h))
    hw = (max(1, round(h * scale)), max(1, round(w * scale))) if scale < 1 else None
    pixels = load_image(path, "L" if grey else "RGB", hw).astype(np.float32) / 255
    to_grey = magnitude or abs(float(weights.sum())) < 1e-3
    src = pixels
    if to_grey and pixels.shape[2] == 3:
        src = (pixels @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    chw = np.ascontiguousarray(src.transpose(2, 0, 1))
    result = (gradient_magnitude(chw, padding_mode=padding_mode) if magnitude
              else apply_kernel(chw, weights, padding_mode=padding_mode))
    result = np.asarray(result, np.float32).transpose(1, 2, 0)
    label = "gradient_magnitude" if magnitude else kernel
    dest = Path(out) if out is not None else Path(f"{path.stem}-{label}.png")
    plot_kernel(pixels, weights, result, dest,
                name="Sobel gradient magnitude" if magnitude else kernel)
    echo(f"wrote {dest}" + (f" (image shrunk to {hw[1]}x{hw[0]})" if hw else ""))
    return dest
