"""Real data sets: MNIST, Fashion-MNIST (+ an embedded sample), CIFAR-10/100, image folders;
detection and segmentation: synthetic ``Shapes`` and COCO-format ``CocoDetection``.

Readers return uint8 images (HWC per item) and int64 labels; files are found in ``root``,
``$FILTERBANK_DATA``, ``~/.cache/filterbank`` or system directories (see :mod:`.download`).
"""

from filterbank.data.datasets.cifar import CIFAR10, CIFAR100, read_cifar_binary
from filterbank.data.datasets.coco import CocoDetection, polygon_mask
from filterbank.data.datasets.download import (
    DownloadError,
    cache_dir,
    download_url,
    search_dirs,
    sha256_file,
)
from filterbank.data.datasets.fashion_mnist import MNIST, FashionMNIST, FashionMNISTSample
from filterbank.data.datasets.idx import read_idx, read_idx_images, read_idx_labels, write_idx
from filterbank.data.datasets.image_folder import (
    IMG_EXTENSIONS,
    ImageFolder,
    ImageFolderArrays,
    image_folder_splits,
    load_image,
)
from filterbank.data.datasets.registry import (
    available_datasets,
    canonical_name,
    get_dataset,
    is_image_folder_name,
)
from filterbank.data.datasets.shapes import SHAPE_KINDS, Shapes, StandardShapes, collate_detection

__all__ = [
    "CIFAR10", "CIFAR100", "DownloadError", "FashionMNIST", "FashionMNISTSample", "IMG_EXTENSIONS",
    "ImageFolder", "ImageFolderArrays", "MNIST", "available_datasets", "cache_dir",
    "download_url", "get_dataset", "image_folder_splits", "is_image_folder_name", "load_image",
    "read_cifar_binary", "read_idx", "read_idx_images", "read_idx_labels", "search_dirs",
    "sha256_file", "write_idx", "CocoDetection", "SHAPE_KINDS", "Shapes", "collate_detection",
    "polygon_mask", "canonical_name", "StandardShapes",
]
