"""functional.kernels: the classic kernels, apply_kernel and gradient_magnitude.

Checked against a direct loop over the padded image (no SciPy), hand-computed answers on ramps
and parabolas, a float64 gradcheck, and PyTorch's depthwise conv2d.
"""

from __future__ import annotations

import numpy as np
import pytest
from harness import assert_close

import filterbank as fb
import filterbank.functional as F
from filterbank.functional import kernels as K

NP_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def reference(img: np.ndarray, k: np.ndarray, mode: str) -> np.ndarray:
    """Cross-correlation of each (H, W) plane by explicit loops over the padded image."""
    kh, kw = k.shape
    pads = ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2)
    lead = img.shape[:-2]
    planes = img.reshape((-1,) + img.shape[-2:]).astype(np.float64)
    out = np.zeros_like(planes)
    for n, plane in enumerate(planes):
        p = np.pad(plane, pads, mode=NP_MODES[mode])
        for i in range(plane.shape[0]):
            for j in range(plane.shape[1]):
                out[n, i, j] = np.sum(p[i:i + kh, j:j + kw] * k)
    return out.reshape(lead + img.shape[-2:])


def test_kernels_are_small_float32_arrays_with_the_right_sums():
    for name, make in K.KERNELS.items():
        k = make()
        assert isinstance(k, np.ndarray) and k.dtype == np.float32 and k.ndim == 2, name
    assert K.identity().sum() == 1 and K.identity()[1, 1] == 1
    assert_close(K.box_blur(4), np.full((4, 4), 1 / 16))
    g = K.gaussian(7, sigma=1.5)
    assert g.shape == (7, 7) and abs(g.sum() - 1) < 1e-6 and g.argmax() == 24
    assert_close(g, g.T) and np.allclose(g, g[::-1, ::-1])
    assert_close(g[3, 4] / g[3, 3], np.exp(-1 / (2 * 1.5 ** 2)))
    # OpenCV's default sigma for a 3x3 kernel is 0.8: weights exp(-1/1.28) around the centre
    g3 = K.gaussian(3)
    assert_close(g3[1, 0] / g3[1, 1], np.exp(-1 / (2 * 0.8 ** 2)))
    assert np.array_equal(K.sobel_y(), K.sobel_x().T)
    assert K.laplacian().sum() == 0 and K.sharpen().sum() == 1 and K.emboss().sum() == 1
    assert sorted(F.KERNELS) == sorted(K.KERNELS) and "sobel_x" in F.KERNELS


@pytest.mark.parametrize("mode", list(NP_MODES))
@pytest.mark.parametrize("kernel", ["sharpen", "emboss", "box_blur", "random3x3", "random2x4"])
def test_apply_kernel_matches_the_loop(mode, kernel):
    rng = np.random.default_rng(0)
    img = rng.standard_normal((2, 3, 6, 7)).astype(np.float32)
    k = {"random3x3": rng.standard_normal((3, 3)),
         "random2x4": rng.standard_normal((2, 4))}.get(kernel, kernel)
    got = F.apply_kernel(img, k, padding_mode=mode)
    karr = K.KERNELS[k]() if isinstance(k, str) else k
    assert isinstance(got, np.ndarray) and got.dtype == np.float32 and got.shape == img.shape
    assert_close(got, reference(img, karr, mode))


@pytest.mark.parametrize("shape", [(6, 5), (2, 6, 5), (1, 2, 6, 5)])
def test_apply_kernel_ranks_and_types(shape):
    rng = np.random.default_rng(1)
    img = rng.standard_normal(shape)
    got = F.apply_kernel(img, "gaussian", size=3, sigma=1.0)
    assert got.shape == shape and got.dtype == np.float64  # a float64 image stays float64
    assert_close(got, reference(img, K.gaussian(3, 1.0), "reflect"))
    t = F.apply_kernel(fb.Tensor(img.astype(np.float32)), "identity")
    assert isinstance(t, fb.Tensor) and t.shape == shape
    assert_close(t, img.astype(np.float32))
    u8 = (rng.random(shape) * 255).astype(np.uint8)
    assert F.apply_kernel(u8, "box_blur").dtype == np.float32


def test_sobel_on_a_ramp_is_constant_and_laplacian_of_a_parabola_is_2():
    i, j = np.mgrid[0:8, 0:9].astype(np.float32)
    ramp = 0.5 * j  # brightens to the right with slope 0.5
    gx = F.apply_kernel(ramp, "sobel_x")
    gy = F.apply_kernel(ramp, "sobel_y")
    assert np.all(gx[:, 1:-1] == 4.0)  # 8 * 0.5, every column whose neighbours exist
    assert np.all(gx[:, [0, -1]] == 0)  # the mirrored border has no slope
    assert np.all(gy == 0)
    assert np.all(F.apply_kernel(2 * i, "sobel_y")[1:-1] == 16.0)
    assert np.all(F.apply_kernel(ramp + 3 * i, "laplacian")[1:-1, 1:-1] == 0)
    assert np.all(F.apply_kernel(j * j, "laplacian")[:, 1:-1] == 2.0)
    mag = F.gradient_magnitude(3 * j + 4 * i)
    assert_close(mag[1:-1, 1:-1], np.full((6, 7), 40.0))  # 8 * sqrt(3^2 + 4^2)
    assert_close(mag, np.hypot(F.apply_kernel(3 * j + 4 * i, "sobel_x"),
                               F.apply_kernel(3 * j + 4 * i, "sobel_y")))


@pytest.mark.parametrize("mode", list(NP_MODES))
def test_apply_kernel_gradcheck_image_and_kernel(mode):
    rng = np.random.default_rng(2)
    x = fb.Tensor(rng.standard_normal((2, 2, 5, 6)), dtype=np.float64, requires_grad=True)
    k = fb.Tensor(rng.standard_normal((3, 2)), dtype=np.float64, requires_grad=True)
    assert fb.gradcheck(lambda a, b: F.apply_kernel(a, b, padding_mode=mode), [x, k])
    assert fb.gradcheck(lambda a: F.apply_kernel(a, "emboss", padding_mode=mode), [x])


def test_gradient_magnitude_gradcheck_and_flat_regions():
    rng = np.random.default_rng(3)
    x = fb.Tensor(rng.standard_normal((1, 2, 5, 5)), dtype=np.float64, requires_grad=True)
    assert fb.gradcheck(lambda a: F.gradient_magnitude(a, padding_mode="zeros"), [x])
    # the corners of a reflect-padded image have |g| = 0 exactly: a 0 gradient there, not nan
    flat = fb.Tensor(np.ones((1, 1, 4, 4)), dtype=np.float64, requires_grad=True)
    F.gradient_magnitude(flat).sum().backward()
    assert np.array_equal(flat.grad.numpy(), np.zeros((1, 1, 4, 4)))
    x.grad = None
    out = F.gradient_magnitude(x)
    assert out.dtype == np.float64
    out.sum().backward()
    assert np.all(np.isfinite(x.grad.numpy()))


def test_matches_torch_depthwise_conv():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    img = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    for k in (K.sharpen(), rng.standard_normal((4, 2)).astype(np.float32)):
        w = torch.from_numpy(np.broadcast_to(k, (3, 1) + k.shape).copy())
        kh, kw = k.shape  # PyTorch's 'same' puts the extra row/column after, as we do
        padded = torch.nn.functional.pad(torch.from_numpy(img),
                                         ((kw - 1) // 2, kw // 2, (kh - 1) // 2, kh // 2))
        want = torch.nn.functional.conv2d(padded, w, groups=3)
        assert_close(F.apply_kernel(img, k, padding_mode="zeros"), want)
    kh, kw = 5, 5
    padded = torch.nn.functional.pad(torch.from_numpy(img), (2, 2, 2, 2), mode="reflect")
    w = torch.from_numpy(np.broadcast_to(K.gaussian(kh), (3, 1, kh, kw)).copy())
    assert_close(F.apply_kernel(img, "gaussian"), torch.nn.functional.conv2d(padded, w, groups=3))


@pytest.mark.parametrize("call, exc, match", [
    (lambda: F.apply_kernel(np.zeros((4, 4)), "blur"), ValueError,
     "apply_kernel: unknown kernel 'blur'; expected one of identity, box_blur, gaussian"),
    (lambda: F.apply_kernel(np.zeros((4, 4)), np.ones(3)), ValueError,
     r"expected a kernel name or a 2-D numeric \(kH, kW\) array, got ndarray of shape \(3,\)"),
    (lambda: F.apply_kernel(np.zeros((4, 4)), np.ones((3, 3)), size=3), TypeError,
     "keyword arguments"),
    (lambda: F.apply_kernel(np.zeros(4), "identity"), ValueError,
     r"expected an image of shape \(H, W\), \(C, H, W\) or \(N, C, H, W\), got shape \(4,\)"),
    (lambda: F.apply_kernel(np.zeros((4, 4)), "identity", padding_mode="mirror"), ValueError,
     "padding_mode must be one of zeros, reflect, replicate, circular, got 'mirror'"),
    (lambda: F.apply_kernel(np.zeros((2, 2)), "gaussian", size=5), ValueError,
     r"the image \(2x2\) is too small for reflect padding of a 5x5 kernel"),
    (lambda: F.apply_kernel(np.array([["a"]]), "identity"), TypeError, "numeric image"),
    (lambda: K.gaussian(3, sigma=0), ValueError, "gaussian: sigma must be a positive number"),
    (lambda: K.box_blur(0), ValueError, "box_blur: size must be a positive int, got 0"),
])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_docstring_examples_run():
    import doctest

    result = doctest.testmod(K, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
