"""What a trained network's features are worth on their own: descriptors (``embed``), PCA, a
linear probe (logistic regression on frozen features) and nearest-neighbour retrieval.

A network trained to classify turns each image into a vector, the input of its last linear
layer, that the classifier separates with hyperplanes. How good those vectors are is measured
the way self-supervised learning measures them: freeze the network, fit a linear classifier
on the features of the training images (:class:`LinearProbe`) and score it on the test images;
or look up each test image's nearest training images by cosine similarity (:func:`nearest`).
The same probe on an untrained network of the same architecture shows how much of the
accuracy the training put into the features.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

import filterbank as fb
from filterbank import nn, optim
from filterbank.interpret._common import check_channels, eval_frozen
from filterbank.nn.module import Module
from filterbank.nn.utils import find_module
from filterbank.tensor import Tensor

__all__ = ["PCA", "LinearProbe", "embed", "nearest", "penultimate_layer"]


class _Stop(BaseException):
    """Raised by the capturing hook: the rest of the forward is not needed."""


def penultimate_layer(model: Module) -> tuple[str, Module]:
    """``(name, module)`` of the model's last ``nn.Linear`` (in ``named_modules()`` order),
    whose input :func:`embed` returns by default."""
    last = None
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear):
            last = (name, m)
    if last is None:
        raise ValueError(f"embed: {type(model).__name__} has no nn.Linear, so it has no "
                         f"penultimate layer; pass layer= (a named_modules() name)")
    return last


def _batches(data, batch_size: int, where: str) -> Iterable[np.ndarray]:
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.ndarray):
        if data.ndim != 4:
            hint = " (add a batch axis: x[None])" if data.ndim == 3 else ""
            raise ValueError(f"{where}: expected images of shape (N, C, H, W), got shape "
                             f"{data.shape}{hint}")
        return (data[i:i + batch_size] for i in range(0, len(data), batch_size))
    if isinstance(data, Iterable):  # a DataLoader or any iterable of batches (x or (x, y, ...))
        return (b[0] if isinstance(b, tuple | list) else b for b in data)
    raise TypeError(f"{where}: expected data to be a NumPy array or Tensor (N, C, H, W) or an "
                    f"iterable of batches, got {type(data).__name__}")


def embed(model: Module, data, layer: str | Module | None = None, batch_size: int = 256,
          normalize: bool = False, pca: int | PCA | None = None, return_pca: bool = False):
    """Descriptors of images: one feature vector per image from a layer of a network.

    By default the features are the input of the model's last ``nn.Linear`` (the penultimate
    layer: what the classifier separates), captured with a forward pre-hook; with ``layer``,
    the output of that layer, flattened to ``(N, D)``. The forward stops at the layer. The
    model runs in eval mode without recording gradients (its mode is restored afterwards).
    Then, in this order::

        f = f / max(||f||_2, 1e-12)                  if normalize
        f = (f - mu) V_k^T                           if pca (mu, V_k: see :class:`PCA`)

    Args:
        model: the network.
        data: images (N, C, H, W) as a NumPy array or Tensor, in the model's input units, or
            an iterable of batches (a ``DataLoader``: the first element of each batch).
        layer: a ``named_modules()`` name or a Module. Default: the input of the last Linear.
        batch_size: images per forward (array input). Default: 256.
        normalize: L2-normalise each feature vector. Default: False.
        pca: an int ``k`` fits a :class:`PCA` with ``k`` components on these features; a
            fitted :class:`PCA` is applied as is (so a test split uses the training split's
            projection). Default: None.
        return_pca: also return the PCA used (None without one).

    Returns:
        ``(N, D)`` float32 features; with ``return_pca``, the pair ``(features, pca)``.

    Shape:
        ``(N, C, H, W) -> (N, D)``, ``D`` the layer's size per image (``k`` with PCA).

    Example:
        >>> import numpy as np
        >>> import filterbank as fb
        >>> net = fb.nn.Sequential(fb.nn.Flatten(), fb.nn.Linear(4, 3), fb.nn.ReLU(),
        ...                        fb.nn.Linear(3, 2))
        >>> embed(net, np.ones((5, 1, 2, 2), np.float32)).shape    # the input of net[3]
        (5, 3)
        >>> f, p = embed(net, np.ones((5, 1, 2, 2), np.float32), layer="1", pca=2,
        ...              return_pca=True)
        >>> f.shape, p.components.shape
        ((5, 2), (2, 3))
    """
    where = "embed"
    if not isinstance(model, Module):
        raise TypeError(f"{where}: expected model to be an nn.Module, got {type(model).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"{where}: batch_size must be a positive int, got {batch_size!r}")
    if not (pca is None or isinstance(pca, PCA)
            or (isinstance(pca, int) and not isinstance(pca, bool) and pca >= 1)):
        raise ValueError(f"{where}: pca must be None, a positive int or a fitted PCA, got "
                         f"{pca!r}")
    if layer is None:
        name, module = penultimate_layer(model)
        take_input = True
    else:
        name, module = find_module(model, layer, where)
        take_input = False
    got: list = []

    def pre_hook(m, args):
        got.append(args[0])
        raise _Stop

    def hook(m, args, out):
        got.append(out)
        raise _Stop

    chunks = []
    handle = (module.register_forward_pre_hook(pre_hook) if take_input
              else module.register_forward_hook(hook))  # once, not per batch
    with eval_frozen(model), fb.no_grad():
        try:
            for xb in _batches(data, batch_size, where):
                x = xb if isinstance(xb, Tensor) else Tensor(np.asarray(xb, np.float32))
                check_channels(where, model, x, "data")
                got.clear()
                try:
                    model(x)
                except _Stop:
                    pass
                except Exception as e:
                    raise ValueError(f"{where}: the model ({type(model).__name__}) cannot take "
                                     f"images of shape {tuple(x.shape)}: {type(e).__name__}: "
                                     f"{e}") from e
                if not got:
                    raise ValueError(f"{where}: layer {name!r} was not called by "
                                     f"{type(model).__name__}.forward")
                out = got[0]
                if not isinstance(out, Tensor):
                    raise ValueError(f"{where}: layer {name!r} gives a {type(out).__name__}, "
                                     f"not a Tensor of features")
                chunks.append(np.asarray(out.data, np.float32).reshape(len(x), -1))
        finally:
            handle.remove()
    if not chunks:
        raise ValueError(f"{where}: no images in data")
    f = np.concatenate(chunks, axis=0)
    if normalize:
        f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), np.float32(1e-12))
    fitted = None
    if pca is not None:
        fitted = pca if isinstance(pca, PCA) else PCA(pca).fit(f)
        f = fitted.transform(f)
    f = np.ascontiguousarray(f, dtype=np.float32)
    return (f, fitted) if return_pca else f


def _features(x, where: str, name: str = "features") -> np.ndarray:
    arr = x.data if isinstance(x, Tensor) else np.asarray(x)
    if arr.dtype.kind not in "fiub" or arr.ndim != 2 or 0 in arr.shape:
        raise ValueError(f"{where}: expected {name} to be a non-empty numeric (N, D) array, got "
                         f"{arr.dtype} shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{where}: {name} contain NaN or infinite values")
    return arr


class PCA:
    """Principal component analysis by the SVD of the centred data (NumPy, float64).

    ``fit(X)``: ``mu = mean(X)``, ``X - mu = U S V^T``; the components are the first ``k`` rows
    of ``V^T`` (unit vectors, each with its largest-magnitude entry positive so that the
    signs are reproducible), ``explained_variance = S^2 / (N - 1)``.
    ``transform(X) = (X - mu) V_k^T``.

    Args:
        n_components: ``k``, at most ``min(N, D)`` of the data it is fitted on.

    Shape:
        ``transform: (N, D) -> (N, k)``.

    Example:
        >>> import numpy as np
        >>> x = np.array([[0.0, 0.0], [2.0, 2.0], [4.0, 4.0]])
        >>> p = PCA(1).fit(x)
        >>> [round(float(v), 4) for v in p.components[0]]
        [0.7071, 0.7071]
        >>> [round(float(v), 4) for v in p.transform(x)[:, 0]]
        [-2.8284, 0.0, 2.8284]
    """

    def __init__(self, n_components: int):
        if isinstance(n_components, bool) or not isinstance(n_components, int) \
                or n_components < 1:
            raise ValueError(f"PCA: n_components must be a positive int, got {n_components!r}")
        self.n_components = n_components
        self.mean: np.ndarray | None = None
        self.components: np.ndarray | None = None
        self.explained_variance: np.ndarray | None = None
        self.explained_variance_ratio: np.ndarray | None = None

    def fit(self, x) -> PCA:
        x = _features(x, "PCA.fit").astype(np.float64)
        n, d = x.shape
        if self.n_components > min(n, d):
            raise ValueError(f"PCA: n_components={self.n_components} is more than min(N, D) = "
                             f"{min(n, d)} for data of shape {x.shape}")
        self.mean = x.mean(axis=0)
        _, s, vt = np.linalg.svd(x - self.mean, full_matrices=False)
        vt = vt[:self.n_components]
        signs = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(axis=1)])
        self.components = vt * np.where(signs == 0, 1, signs)[:, None]
        var = s * s / max(n - 1, 1)
        self.explained_variance = var[:self.n_components]
        total = var.sum()
        self.explained_variance_ratio = (self.explained_variance / total if total > 0
                                         else np.zeros_like(self.explained_variance))
        return self

    def transform(self, x) -> np.ndarray:
        if self.components is None:
            raise ValueError("PCA.transform: fit the PCA first (PCA(k).fit(features))")
        x = _features(x, "PCA.transform")
        if x.shape[1] != self.components.shape[1]:
            raise ValueError(f"PCA.transform: fitted on {self.components.shape[1]} features, got "
                             f"{x.shape[1]}")
        return ((x.astype(np.float64) - self.mean) @ self.components.T).astype(np.float32)

    def __repr__(self) -> str:
        return f"PCA(n_components={self.n_components})"


class LinearProbe:
    """Multinomial logistic regression on frozen features, trained with filterbank itself.

    The features are standardised with the training set's per-dimension mean and standard
    deviation (``z = (f - mean) / max(std, 1e-6)``, unless ``standardize=False``), then::

        logits = z W^T + b                       an nn.Linear(D, K)
        L      = mean_n -log softmax(logits_n)[y_n] + weight_decay/2 ||W||^2 (via the optimizer)

    minimised with Adam (or SGD) for ``epochs`` passes, full-batch by default or in seeded
    shuffled mini-batches. The loss is convex, so the result barely depends on the start.

    Args:
        epochs: passes over the data. Default: 200.
        lr: learning rate. Default: 0.01.
        batch_size: None for full-batch steps (one step per epoch), else mini-batch size.
        weight_decay: L2 penalty on the weights (the optimizer's ``weight_decay``). Default: 0.
        optimizer: ``"adam"`` or ``"sgd"``. Default: ``"adam"``.
        standardize: standardise the features first. Default: True.
        seed: seeds the initialisation and the shuffling. Default: 0.

    Attributes (after ``fit``):
        linear: the trained ``nn.Linear``; mean, scale: the standardisation; classes_: K;
        losses: the training loss after each epoch.

    Example:
        >>> import numpy as np
        >>> f = np.array([[0.0, 1.0], [1.0, 0.0], [0.1, 0.9], [0.9, 0.2]], np.float32)
        >>> probe = LinearProbe(epochs=50).fit(f, [0, 1, 0, 1])
        >>> probe.predict(f).tolist(), probe.score(f, [0, 1, 0, 1])
        ([0, 1, 0, 1], 1.0)
    """

    def __init__(self, epochs: int = 200, lr: float = 0.01, batch_size: int | None = None,
                 weight_decay: float = 0.0, optimizer: str = "adam", standardize: bool = True,
                 seed: int = 0):
        for name, v in (("epochs", epochs), ("seed", seed)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"LinearProbe: {name} must be an int >= 0, got {v!r}")
        if batch_size is not None and (isinstance(batch_size, bool)
                                       or not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"LinearProbe: batch_size must be None or a positive int, got "
                             f"{batch_size!r}")
        if optimizer not in ("adam", "sgd"):
            raise ValueError(f"LinearProbe: optimizer must be 'adam' or 'sgd', got {optimizer!r}")
        if not (float(lr) > 0 and float(weight_decay) >= 0):
            raise ValueError(f"LinearProbe: expected lr > 0 and weight_decay >= 0, got lr={lr!r}, "
                             f"weight_decay={weight_decay!r}")
        self.epochs, self.lr, self.batch_size = epochs, float(lr), batch_size
        self.weight_decay, self.optimizer = float(weight_decay), optimizer
        self.standardize, self.seed = bool(standardize), seed
        self.linear: nn.Linear | None = None
        self.mean = self.scale = None
        self.classes_: int | None = None
        self.losses: list[float] = []

    def _z(self, features, where: str) -> np.ndarray:
        f = _features(features, where).astype(np.float32)
        if self.linear is not None and f.shape[1] != self.linear.in_features:
            raise ValueError(f"{where}: the probe was fitted on {self.linear.in_features} "
                             f"features, got {f.shape[1]}")
        return ((f - self.mean) / self.scale).astype(np.float32) if self.standardize else f

    def _labels(self, labels, n: int, where: str) -> np.ndarray:
        y = np.asarray(labels.data if isinstance(labels, Tensor) else labels)
        if y.dtype.kind not in "iu" or y.shape != (n,):
            raise ValueError(f"{where}: expected {n} integer labels, got {y.dtype} shape "
                             f"{y.shape}")
        if y.min() < 0:
            raise ValueError(f"{where}: labels must be >= 0, got {int(y.min())}")
        return y.astype(np.int64)

    def loss(self, features, labels) -> Tensor:
        """The mean cross-entropy of the probe on ``(features, labels)`` as a Tensor in the
        graph (``.backward()`` gives the gradients of ``linear.weight`` and ``.bias``)."""
        if self.linear is None:
            raise ValueError("LinearProbe.loss: fit the probe first (or call init(features, "
                             "labels))")
        z = self._z(features, "LinearProbe.loss")
        y = self._labels(labels, len(z), "LinearProbe.loss")
        return nn.CrossEntropyLoss()(self.linear(Tensor(z)), Tensor(y))

    def init(self, features, labels, num_classes: int | None = None) -> LinearProbe:
        """Set the standardisation from ``features`` and a fresh, seeded ``nn.Linear``
        (PyTorch's default initialisation); ``fit`` starts with this."""
        f = _features(features, "LinearProbe.fit").astype(np.float32)
        y = self._labels(labels, len(f), "LinearProbe.fit")
        k = int(y.max()) + 1 if num_classes is None else int(num_classes)
        if k <= y.max():
            raise ValueError(f"LinearProbe.fit: num_classes={k} but a label is {int(y.max())}")
        self.mean = f.mean(axis=0)
        self.scale = np.maximum(f.std(axis=0), np.float32(1e-6))
        self.classes_ = max(k, 2)
        fb.manual_seed(self.seed)
        self.linear = nn.Linear(f.shape[1], self.classes_)
        self.losses = []
        return self

    def fit(self, features, labels, num_classes: int | None = None) -> LinearProbe:
        """Train on ``features`` (N, D) and integer ``labels`` (N,); returns the probe."""
        self.init(features, labels, num_classes)
        z = self._z(features, "LinearProbe.fit")
        y = self._labels(labels, len(z), "LinearProbe.fit")
        params = list(self.linear.parameters())
        opt = (optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
               if self.optimizer == "adam"
               else optim.SGD(params, lr=self.lr, momentum=0.9, weight_decay=self.weight_decay))
        loss_fn = nn.CrossEntropyLoss()
        rng = np.random.default_rng(self.seed)
        bs = self.batch_size or len(z)
        # full batch: the same arrays every epoch (no per-epoch gather copy of the features)
        full = [(Tensor(z), Tensor(y))] if bs >= len(z) else None
        for _ in range(self.epochs):
            if full is None:
                order = rng.permutation(len(z))
                batches = ((Tensor(z[order[i:i + bs]]), Tensor(y[order[i:i + bs]]))
                           for i in range(0, len(z), bs))
            else:
                batches = full
            total = 0.0
            for zb, yb in batches:
                opt.zero_grad()
                loss = loss_fn(self.linear(zb), yb)
                loss.backward()
                opt.step()
                total += float(loss.item()) * len(zb)
            self.losses.append(total / len(z))
        return self

    def logits(self, features) -> np.ndarray:
        """(N, K) float32 scores."""
        if self.linear is None:
            raise ValueError("LinearProbe: fit the probe first")
        z = self._z(features, "LinearProbe.predict")
        with fb.no_grad():
            return np.asarray(self.linear(Tensor(z)).data, np.float32)

    def predict(self, features) -> np.ndarray:
        """(N,) int64 predicted classes."""
        return self.logits(features).argmax(axis=1).astype(np.int64)

    def score(self, features, labels) -> float:
        """Accuracy on ``(features, labels)``."""
        pred = self.predict(features)
        y = self._labels(labels, len(pred), "LinearProbe.score")
        return float(np.mean(pred == y))

    def __repr__(self) -> str:
        return (f"LinearProbe(epochs={self.epochs}, lr={self.lr}, batch_size={self.batch_size}, "
                f"weight_decay={self.weight_decay}, optimizer={self.optimizer!r})")


def nearest(query, features, k: int = 5, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest neighbours of each query by cosine similarity.

    ``sim[q, n] = <f_q, f_n> / (||f_q|| ||f_n||)`` (a zero vector has similarity 0 to
    everything); each row's ``k`` largest, most similar first, ties to the lower index.

    Args:
        query: (Q, D) query features.
        features: (N, D) features searched.
        k: neighbours per query (at most N).
        chunk: queries compared at once (bounds the (chunk, N) similarity block in memory).

    Returns:
        ``(indices, similarities)``: (Q, k) int64 indices into ``features`` and (Q, k)
        float32 similarities.

    Example:
        >>> import numpy as np
        >>> db = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
        >>> idx, sim = nearest(np.array([[2.0, 0.1]]), db, k=2)
        >>> idx.tolist(), [round(float(s), 3) for s in sim[0]]
        ([[0, 2]], [0.999, 0.742])
    """
    q = _features(query, "nearest", "query").astype(np.float32)
    f = _features(features, "nearest").astype(np.float32)
    if q.shape[1] != f.shape[1]:
        raise ValueError(f"nearest: query has {q.shape[1]} features per row, features has "
                         f"{f.shape[1]}")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= len(f):
        raise ValueError(f"nearest: k must be an int from 1 to {len(f)} (the number of "
                         f"features), got {k!r}")

    def unit(a):
        return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), np.float32(1e-12))

    qn, fn = unit(q), unit(f)
    idx = np.empty((len(q), k), np.int64)
    sim = np.empty((len(q), k), np.float32)
    for s in range(0, len(q), chunk):
        block = qn[s:s + chunk] @ fn.T                                 # (chunk, N)
        order = np.argsort(-block, axis=1, kind="stable")[:, :k]
        idx[s:s + chunk] = order
        sim[s:s + chunk] = np.take_along_axis(block, order, axis=1)
    return idx, sim
