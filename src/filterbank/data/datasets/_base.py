"""What the array-backed image data sets (MNIST, Fashion-MNIST, CIFAR) have in common."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from filterbank.data.dataset import Dataset


class ArrayImageDataset(Dataset):
    """Images held as one uint8 array ``data`` (N, H, W) or (N, H, W, C) and labels as
    ``targets`` (N,) int64. An item is ``(image HWC uint8, int label)`` after the transforms."""

    data: np.ndarray
    targets: np.ndarray
    classes: list[str]
    transform: Callable | None = None
    target_transform: Callable | None = None
    train: bool = True

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.classes)}

    def __len__(self) -> int:
        return len(self.data)

    def _image(self, index):
        image = self.data[index]
        return image[..., None] if image.ndim == 2 else image  # HWC, also for grayscale

    def __getitem__(self, index):
        image, target = self._image(index), int(self.targets[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    @property
    def get_batch(self):
        """``get_batch(indices) -> (images (B, H, W, C) uint8, labels (B,) int64)``: one NumPy
        gather for the DataLoader's fast path. Absent (AttributeError) when a per-item
        transform is set, so the loader falls back to item-by-item fetching."""
        if self.transform is not None or self.target_transform is not None:
            raise AttributeError(
                f"{type(self).__name__}.get_batch is unavailable with per-item transforms"
            )
        return self._get_batch

    def _get_batch(self, indices):
        images = self.data[indices]
        if images.ndim == 3:
            images = images[..., None]
        return images, self.targets[indices]

    def arrays(self, normalize: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The whole split as ``(images, labels)`` ready for a CNN: images NCHW, float32 in
        [0, 1] if ``normalize`` else uint8; labels int64. Transforms are not applied."""
        x = self.data[:, None] if self.data.ndim == 3 else self.data.transpose(0, 3, 1, 2)
        if normalize:
            x = x.astype(np.float32) / np.float32(255)
        else:
            x = np.ascontiguousarray(x)
        return x, self.targets

    def __repr__(self) -> str:
        split = "train" if self.train else "test"
        return f"{type(self).__name__}(split={split!r}, size={len(self)})"
