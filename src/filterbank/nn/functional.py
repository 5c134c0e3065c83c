"""``filterbank.nn.functional`` is :mod:`filterbank.functional`, under PyTorch's spelling
(``import filterbank.nn.functional as F`` works as ``import torch.nn.functional as F`` does)."""

import sys

from filterbank import functional as _functional

sys.modules[__name__] = _functional
