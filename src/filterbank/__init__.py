"""filterbank: convolutional neural networks from first principles on NumPy."""

from filterbank.autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from filterbank.autograd.function import Function
from filterbank.autograd.gradcheck import GradcheckError, gradcheck
from filterbank.creation import (
    arange, empty, empty_like, full, full_like, ones, ones_like, rand, rand_like, randn,
    randn_like, tensor, zeros, zeros_like,
)
from filterbank.functional import (
    abs, add, argmax, argmin, broadcast_to, cat, chunk, clamp, clip, concatenate, cos, div, exp,
    expand, flatten, log, log_softmax, logsumexp, matmul, max, maximum, mean, min, minimum, mul,
    neg, pad, permute, pow, relu, reshape, sigmoid, sin, softmax, split, sqrt, squeeze, stack,
    sub, sum, tanh, transpose, unsqueeze, var, where,
)
from filterbank.functional import (
    amax, amin, argsort, kthvalue, median, prod, sort, std, topk,
)
from filterbank.functional.reduce import norm
from filterbank.random import default_generator, manual_seed
from filterbank.tensor import Tensor
from filterbank.serialization import load, save
from filterbank.autograd.grad_mode import inference_mode
from filterbank.creation import (
    allclose, as_tensor, eye, from_numpy, linspace, randint, randperm,
)
from filterbank.device import device
from filterbank.dtypes import (
    bool, double, float16, float32, float64, half, int8, int16, int32, int64, long, uint8,
)
from filterbank.functional import (
    bmm, einsum, flip, gather, masked_fill, mm, scatter, scatter_add,
)
from filterbank._allocator import tune as tune_allocator

# isort: split
# layers build on the core above (importing nn first would be circular)
from filterbank import nn  # isort: skip
from filterbank import cuda, data, functional, models, optim, train, viz  # isort: skip
from filterbank import ops  # isort: skip
from filterbank import interpret  # isort: skip

__version__ = "0.1.0"
