"""Stateless differentiable ops (``import filterbank.functional as F``)."""

from filterbank.functional.activation import (
    elu, gelu, hardtanh, leaky_relu, prelu, relu6, selu, silu, softplus, swish,
)
from filterbank.functional.conv import (
    conv1d, conv2d, conv3d, conv_transpose1d, conv_transpose2d, conv_transpose3d,
)
from filterbank.functional.dropout import dropout, dropout2d
from filterbank.functional.elementwise import (
    abs, add, cast, clamp, clip, clone, cos, div, eq, exp, ge, gt, le, log, lt, maximum,
    minimum, mul, ne, neg, pow, relu, sigmoid, sin, sqrt, sub, tanh, where,
)
from filterbank.functional.linear import linear, maxout
from filterbank.functional.loss import (
    binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, huber_loss, l1_loss,
    mse_loss, nll_loss, smooth_l1_loss,
)
from filterbank.functional.matmul import matmul
from filterbank.functional.norm import (
    batch_norm, group_norm, instance_norm, layer_norm, local_response_norm,
)
from filterbank.functional.pool import (
    adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool1d, avg_pool2d,
    avg_pool3d, global_avg_pool2d, max_pool1d, max_pool2d, max_pool3d,
)
from filterbank.functional.reduce import (
    amax, amin, argmax, argmin, argsort, kthvalue, logsumexp, log_softmax, max, mean, median,
    min, prod, softmax, sort, std, sum, topk, var,
)
# ``norm`` the function is ``filterbank.norm`` / ``Tensor.norm`` (as ``torch.norm``): here the
# name is the module functional/norm.py (batch_norm, layer_norm, ...)
from filterbank.functional.shape import (
    broadcast_to, cat, chunk, concatenate, expand, flatten, getitem, index_put, pad, permute,
    reshape,
    split, squeeze, stack, transpose, unsqueeze, view,
)
from filterbank.functional.upsample import interpolate
from filterbank.functional.distance import cosine_similarity, normalize
from filterbank.functional.fold import fold, unfold
from filterbank.functional.index import gather, masked_fill, one_hot, scatter, scatter_add
from filterbank.functional.matmul import bmm, einsum, mm
from filterbank.functional.shape import flip, repeat
from filterbank.functional import kernels
from filterbank.functional.kernels import KERNELS, apply_kernel, gradient_magnitude
