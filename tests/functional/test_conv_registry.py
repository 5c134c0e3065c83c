"""functional/_conv/registry.py: which algorithm each convolution gets.

The picks are pinned as they were before the registry existed (the ``_algorithm`` of the
single-file ``functional/conv.py``), on every shape of ``bench/conv_algos.py`` (whose timings
the measured rules come from) and a few more: 1-d and 3-d, groups, a batch whose row-Toeplitz
rows outgrow the memory budget in float64 only. A new algorithm that changes a pick must
change this table on purpose, with its benchmark figures.
"""

from __future__ import annotations

import pytest

from filterbank.functional import conv as conv_module
from filterbank.functional._conv import registry
from filterbank.functional._conv.geometry import _Geometry
from filterbank.functional._conv.im2col import _Im2col
from filterbank.functional._conv.toeplitz import _RowToeplitz
from filterbank.functional._conv.winograd import _Winograd

IM2COL, WINOGRAD, TOEPLITZ, W43, NHWC = "im2col", "winograd", "toeplitz", "winograd43", "nhwc"

#: bench/conv_algos.py's SHAPES: (name, batch, C_in, size, C_out, kernel, padding) -> pick.
#: Winograd F(4x4, 3x3) (W43) took five of F(2x2, 3x3)'s picks when its rule was switched on
#: (measured in bench/results/conv_algos.json; see Winograd43.preferred), and channels-last
#: im2col (NHWC) the small feature maps (bench/results/conv_algos_small.json;
#: Im2colNHWC.preferred)
BENCH = [
    ("lenet c1 1->6 k5 p2 @28", 64, 1, 28, 6, 5, 2, TOEPLITZ),
    ("lenet c2 6->16 k5 @14", 64, 6, 14, 16, 5, 0, TOEPLITZ),
    ("lenet c2 6->16 k5 @14 b256", 256, 6, 14, 16, 5, 0, TOEPLITZ),
    ("3->6 k5 @32", 64, 3, 32, 6, 5, 0, TOEPLITZ),
    ("1->32 k5 p2 @28", 64, 1, 28, 32, 5, 2, IM2COL),
    ("16->32 k5 @14", 64, 16, 14, 32, 5, 0, IM2COL),
    ("32->16 k3 p1 @8", 64, 32, 8, 16, 3, 1, NHWC),
    ("64->32 k3 p1 @16", 64, 64, 16, 32, 3, 1, W43),
    ("3->16 k3 p1 @32", 64, 3, 32, 16, 3, 1, IM2COL),
    ("16->16 k3 p1 @14", 64, 16, 14, 16, 3, 1, IM2COL),
    ("16->16 k3 p1 @28", 64, 16, 28, 16, 3, 1, WINOGRAD),
    ("32->32 k3 p1 @16", 64, 32, 16, 32, 3, 1, IM2COL),
    ("32->32 k3 p1 @28", 64, 32, 28, 32, 3, 1, W43),
    ("64->64 k3 p1 @32", 64, 64, 32, 64, 3, 1, W43),
    ("128->128 k3 p1 @16", 64, 128, 16, 128, 3, 1, W43),
    ("256->256 k3 p1 @8", 64, 256, 8, 256, 3, 1, NHWC),
    ("16->16 k3 p1 @8", 64, 16, 8, 16, 3, 1, NHWC),
    ("32->32 k3 p1 @7", 64, 32, 7, 32, 3, 1, NHWC),
    ("64->64 k3 p1 @7", 64, 64, 7, 64, 3, 1, NHWC),
    ("64->64 k3 p1 @4", 64, 64, 4, 64, 3, 1, NHWC),
    ("512->512 k3 p1 @4", 64, 512, 4, 512, 3, 1, IM2COL),
    ("resnet 512->512 k3 p1 @7", 32, 512, 7, 512, 3, 1, IM2COL),
]

#: (x shape, w shape, stride, padding, dilation, groups, itemsize) -> pick
MORE = [
    ((256, 64, 32, 32), (64, 64, 3, 3), (1, 1), 1, (1, 1), 1, 8, W43),
    ((8, 64, 32, 32), (64, 64, 3, 3), (2, 2), 1, (1, 1), 1, 4, IM2COL),
    ((2, 4, 9, 9, 9), (8, 4, 3, 3, 3), (1, 1, 1), 1, (1, 1, 1), 1, 4, IM2COL),
    ((4, 8, 50), (16, 8, 5), (1,), 2, (1,), 1, 4, IM2COL),
    ((8, 32, 24, 24), (32, 8, 3, 3), (1, 1), 1, (1, 1), 4, 4, IM2COL),
    ((512, 6, 14, 14), (16, 6, 5, 5), (1, 1), 0, (1, 1), 1, 4, TOEPLITZ),
    ((2048, 6, 14, 14), (16, 6, 5, 5), (1, 1), 0, (1, 1), 1, 4, TOEPLITZ),
    ((2048, 6, 14, 14), (16, 6, 5, 5), (1, 1), 0, (1, 1), 1, 8, IM2COL),  # rows > budget
    # bench/conv_algos.py's strided shapes: outputs of 7 or less go channels-last
    ((64, 16, 14, 14), (32, 16, 3, 3), (2, 2), 1, (1, 1), 1, 4, NHWC),
    ((64, 32, 14, 14), (64, 32, 3, 3), (2, 2), 1, (1, 1), 1, 4, NHWC),
    ((64, 32, 7, 7), (64, 32, 3, 3), (2, 2), 1, (1, 1), 1, 4, NHWC),
    ((64, 16, 28, 28), (16, 16, 3, 3), (2, 2), 1, (1, 1), 1, 4, IM2COL),
    ((64, 256, 8, 8), (512, 256, 3, 3), (2, 2), 1, (1, 1), 1, 4, IM2COL),
    ((8, 16, 8, 8), (16, 8, 3, 3), (1, 1), 1, (1, 1), 2, 4, IM2COL),  # groups
    ((8, 8, 8, 8), (16, 8, 3, 3), (1, 1), 1, (1, 1), 1, 4, TOEPLITZ),  # 8 input channels
]


def _geometry(xshape, wshape, stride, padding, dilation, groups):
    return _Geometry(xshape, wshape, stride, ((padding, padding),) * len(stride), dilation,
                     groups)


@pytest.mark.parametrize("name, n, c, size, o, k, pad, want", BENCH, ids=[b[0] for b in BENCH])
def test_bench_shapes_keep_their_pick(name, n, c, size, o, k, pad, want):
    g = _geometry((n, c, size, size), (o, c, k, k), (1, 1), pad, (1, 1), 1)
    assert registry.choose(g).name == want
    assert conv_module._algorithm(g) is registry.get(want).impl  # the bench's way of asking


@pytest.mark.parametrize("xshape, wshape, stride, pad, dilation, groups, itemsize, want", MORE)
def test_more_shapes_keep_their_pick(xshape, wshape, stride, pad, dilation, groups, itemsize,
                                     want):
    g = _geometry(xshape, wshape, stride, pad, dilation, groups)
    assert registry.choose(g, itemsize).name == want


def test_entries_name_the_classes_in_priority_order():
    classes = {a.name: a.impl for a in registry.ALGORITHMS}
    assert {n: classes.get(n) for n in (WINOGRAD, TOEPLITZ, IM2COL)} == {
        WINOGRAD: _Winograd, TOEPLITZ: _RowToeplitz, IM2COL: _Im2col}
    names = list(classes)
    assert names.index(WINOGRAD) < names.index(TOEPLITZ) < names.index(IM2COL) == len(names) - 1
    last = registry.ALGORITHMS[-1]
    g = _geometry((1, 2, 5), (3, 1, 2), (2,), 0, (2,), 2)
    assert last.applies(g) and last.preferred(g)  # the fallback takes anything


def test_a_preferred_algorithm_always_applies():
    shapes = [((n, c, s, s), (o, c, k, k), (1, 1), p, (1, 1), 1)
              for _, n, c, s, o, k, p, _ in BENCH] + [m[:6] for m in MORE]
    for args in shapes:
        g = _geometry(*args)
        for algo in registry.ALGORITHMS:
            assert not algo.preferred(g) or algo.applies(g), (algo.name, args)


def test_forcing_checks_only_that_the_algorithm_applies():
    g = _geometry((64, 16, 14, 14), (16, 16, 3, 3), (1, 1), 1, (1, 1), 1)  # picks im2col
    assert registry.choose(g).name == IM2COL
    assert registry.choose(g, force=WINOGRAD).name == WINOGRAD
    assert registry.choose(g, force=TOEPLITZ).name == TOEPLITZ


@pytest.mark.parametrize("force, args, needs", [
    (WINOGRAD, ((2, 4, 9, 9), (8, 4, 3, 3), (2, 2), 1, (1, 1), 1), "3x3 stride-1"),
    (WINOGRAD, ((2, 4, 9, 9), (8, 4, 5, 5), (1, 1), 1, (1, 1), 1), "3x3 stride-1"),
    (TOEPLITZ, ((2, 4, 9, 9), (8, 2, 3, 3), (1, 1), 1, (1, 1), 2), "without groups"),
    (TOEPLITZ, ((2, 4, 9), (8, 4, 3), (1,), 1, (1,), 1), "2-d"),
])
def test_forcing_an_algorithm_that_does_not_apply_says_what_it_needs(force, args, needs):
    with pytest.raises(ValueError, match=f"conv: algorithm '{force}' needs .*{needs}"):
        registry.choose(_geometry(*args), force=force)


def test_an_unknown_name_lists_the_registered_ones():
    g = _geometry((1, 1, 4, 4), (1, 1, 3, 3), (1, 1), 0, (1, 1), 1)
    with pytest.raises(ValueError, match=r"expected an algorithm in \[.*'im2col'\], got 'fft'"):
        registry.choose(g, force="fft")
