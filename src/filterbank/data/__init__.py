"""Data sets, batching and augmentation: ``Dataset``, ``DataLoader``, ``transforms``."""

from filterbank.data import transforms
from filterbank.data.dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split
from filterbank.data.loader import DataLoader, collate_numpy, default_collate
from filterbank.distributed.sampler import DistributedSampler

__all__ = ["ConcatDataset", "DataLoader", "Dataset", "DistributedSampler", "Subset",
           "TensorDataset", "collate_numpy", "default_collate", "random_split", "transforms"]
