"""filterbank.onnx.load / run: each supported op against ONNX Runtime on the same model,
train/eval behaviour, trainable initializers, opset differences and malformed files."""

from __future__ import annotations

import numpy as np
import pytest

import filterbank as fb
import filterbank.onnx as fonnx

RTOL, ATOL = 1e-4, 1e-5


def _model(tmp_path, nodes, inputs, outputs, inits=(), opset=17, name="m.onnx"):
    """Save a one-graph model built with onnx.helper; ``inputs``/``outputs``: (name, array or
    shape, dtype)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    def vi(n, shape, dtype=np.float32):
        return helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)),
                                             shape)

    graph = helper.make_graph(
        nodes, "g", [vi(n, list(a.shape), a.dtype) for n, a in inputs],
        [vi(n, None, d) for n, d in outputs],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in inits])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    assert TensorProto.FLOAT
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def _ort(path, feeds):
    ort = pytest.importorskip("onnxruntime")
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None,
                                                                                        feeds)


def _check(path, feeds):
    got = fonnx.run(path, feeds)
    want = _ort(path, feeds)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL)
    return got


rng = np.random.default_rng(0)


def _r(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def _h():
    return pytest.importorskip("onnx").helper


# The registry: op name -> (nodes, inputs, initializers, opset)
def _cases():
    h = _h()
    mk = h.make_node
    x4, x2 = _r(2, 3, 6, 6), _r(4, 5)
    w_conv = _r(4, 3, 3, 3)
    return {
        "Conv": ([mk("Conv", ["x", "w", "b"], ["y"], pads=[1, 0, 2, 1], strides=[2, 1])],
                 [("x", x4)], [("w", w_conv), ("b", _r(4))], 17),
        "Conv_groups_dilation": ([mk("Conv", ["x", "w"], ["y"], group=3, dilations=[2, 2],
                                     pads=[2, 1, 2, 1])],
                                 [("x", x4)], [("w", _r(6, 1, 3, 3))], 17),
        "Conv_same_upper": ([mk("Conv", ["x", "w"], ["y"], strides=[2, 2], auto_pad="SAME_UPPER")],
                            [("x", _r(1, 3, 7, 7))], [("w", _r(2, 3, 4, 4))], 17),
        "ConvTranspose": ([mk("ConvTranspose", ["x", "w", "b"], ["y"], strides=[2, 2],
                              pads=[1, 1, 0, 0], output_padding=[1, 1])],
                          [("x", x4)], [("w", _r(3, 2, 3, 3)), ("b", _r(2))], 17),
        "MaxPool": ([mk("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                        pads=[1, 1, 1, 1], ceil_mode=1)], [("x", x4)], [], 17),
        "AveragePool": ([mk("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                            pads=[1, 0, 1, 0], count_include_pad=0)], [("x", x4)], [], 17),
        "GlobalAveragePool": ([mk("GlobalAveragePool", ["x"], ["y"])], [("x", x4)], [], 17),
        "Gemm": ([mk("Gemm", ["a", "w", "c"], ["y"], alpha=0.5, beta=2.0, transB=1)],
                 [("a", x2)], [("w", _r(3, 5)), ("c", _r(3))], 17),
        "Gemm_transA": ([mk("Gemm", ["a", "w"], ["y"], transA=1)], [("a", _r(5, 4))],
                        [("w", _r(5, 3))], 17),
        "MatMul": ([mk("MatMul", ["a", "w"], ["y"])], [("a", _r(2, 4, 5))], [("w", _r(5, 3))],
                   17),
        "Add_Sub_Mul_Div": ([mk("Add", ["a", "c"], ["t1"]), mk("Sub", ["t1", "a"], ["t2"]),
                             mk("Mul", ["t2", "a"], ["t3"]), mk("Div", ["t3", "d"], ["y"])],
                            [("a", x2)], [("c", _r(5)), ("d", np.abs(_r(4, 1)) + 1)], 17),
        "Activations": ([mk("Relu", ["a"], ["t1"]), mk("LeakyRelu", ["a"], ["t2"], alpha=0.2),
                         mk("Elu", ["t2"], ["t3"], alpha=0.7), mk("Sigmoid", ["t3"], ["t4"]),
                         mk("Tanh", ["t4"], ["t5"]), mk("Add", ["t1", "t5"], ["t6"]),
                         mk("HardSigmoid", ["t6"], ["t7"]), mk("HardSwish", ["t7"], ["t8"]),
                         mk("Mish", ["a"], ["t9"]), mk("Selu", ["t9"], ["t10"]),
                         mk("Add", ["t8", "t10"], ["y"])], [("a", x2)], [], 18),
        "Softmax_LogSoftmax": ([mk("Softmax", ["a"], ["y"], axis=1),
                                mk("LogSoftmax", ["a"], ["z"], axis=0)], [("a", x2)], [], 17),
        "BatchNormalization": ([mk("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"],
                                   epsilon=1e-3)], [("x", x4)],
                               [("s", _r(3)), ("b", _r(3)), ("m", _r(3)),
                                ("v", np.abs(_r(3)) + 0.5)], 17),
        "LayerNormalization": ([mk("LayerNormalization", ["x", "s", "b"], ["y"], axis=-2)],
                               [("x", x4)], [("s", _r(6, 6)), ("b", _r(6, 6))], 17),
        "GroupNormalization": ([mk("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=3)],
                               [("x", _r(2, 6, 4, 4))], [("s", _r(6)), ("b", _r(6))], 21),
        "InstanceNormalization": ([mk("InstanceNormalization", ["x", "s", "b"], ["y"])],
                                  [("x", x4)], [("s", _r(3)), ("b", _r(3))], 17),
        "Dropout_eval": ([mk("Dropout", ["x"], ["y"])], [("x", x4)], [], 17),
        "Flatten_Reshape": ([mk("Flatten", ["x"], ["t"], axis=2), mk("Reshape", ["t", "s"], ["y"])],
                            [("x", x4)], [("s", np.array([0, -1, 4], np.int64))], 17),
        "Concat_Transpose": ([mk("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]),
                              mk("Concat", ["t", "t"], ["y"], axis=-1)], [("x", x4)], [], 17),
        "Pad_reflect": ([mk("Pad", ["x", "p"], ["y"], mode="reflect")], [("x", x4)],
                        [("p", np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64))], 17),
        "Pad_constant": ([mk("Pad", ["x", "p", "v"], ["y"])], [("x", x4)],
                         [("p", np.array([0, 1, 1, 2, 0, 0, 2, 1], np.int64)),
                          ("v", np.array(0.5, np.float32))], 17),
        "Resize_nearest": ([mk("Resize", ["x", "", "sc"], ["y"], mode="nearest",
                               coordinate_transformation_mode="asymmetric", nearest_mode="floor")],
                           [("x", x4)], [("sc", np.array([1, 1, 2, 2], np.float32))], 17),
        "Resize_linear": ([mk("Resize", ["x", "", "sc"], ["y"], mode="linear")],
                          [("x", x4)], [("sc", np.array([1, 1, 2, 2], np.float32))], 17),
        "Clip": ([mk("Clip", ["a", "lo", "hi"], ["y"])], [("a", x2)],
                 [("lo", np.array(-0.5, np.float32)), ("hi", np.array(0.7, np.float32))], 17),
        "Shape_Gather_Unsqueeze": ([mk("Shape", ["x"], ["s"]),
                                    mk("Gather", ["s", "i"], ["n"], axis=0),
                                    mk("Unsqueeze", ["n", "ax"], ["n1"]),
                                    mk("Concat", ["n1", "minus1"], ["shape"], axis=0),
                                    mk("Reshape", ["x", "shape"], ["y"])],
                                   [("x", x4)], [("i", np.array(0, np.int64)),
                                                 ("ax", np.array([0], np.int64)),
                                                 ("minus1", np.array([-1], np.int64))], 17),
        "Constant_Identity": ([mk("Constant", [], ["c"], value=h.make_tensor(
            "c", 1, [5], [1, 2, 3, 4, 5])), mk("Identity", ["a"], ["t"]),
            mk("Mul", ["t", "c"], ["y"])], [("a", x2)], [], 17),
        "Softmax_opset11": ([mk("Softmax", ["x"], ["y"], axis=1)], [("x", x4)], [], 11),
        "Add_int64": ([mk("Add", ["a", "b"], ["y"])], [("a", np.arange(6, dtype=np.int64))],
                      [("b", np.array([7], np.int64))], 17),
    }


CASES = ["Conv", "Conv_groups_dilation", "Conv_same_upper", "ConvTranspose", "MaxPool",
         "AveragePool", "GlobalAveragePool", "Gemm", "Gemm_transA", "MatMul", "Add_Sub_Mul_Div",
         "Activations",
         "Softmax_LogSoftmax", "BatchNormalization", "LayerNormalization", "GroupNormalization",
         "InstanceNormalization", "Dropout_eval", "Flatten_Reshape", "Concat_Transpose",
         "Pad_reflect", "Pad_constant", "Resize_nearest", "Resize_linear", "Clip",
         "Shape_Gather_Unsqueeze", "Constant_Identity", "Softmax_opset11", "Add_int64"]


def _build(tmp_path, case):
    nodes, inputs, inits, opset = _cases()[case]
    outs = [o for n in nodes for o in n.output if o in ("y", "z")]
    dtype = inputs[0][1].dtype
    path = _model(tmp_path, nodes, inputs, [(o, dtype) for o in outs], inits, opset)
    return path, dict(inputs)


@pytest.mark.parametrize("case", CASES)
def test_op_matches_onnxruntime(tmp_path, case):
    pytest.importorskip("onnx")
    path, feeds = _build(tmp_path, case)
    _check(path, feeds)


def test_initializers_are_parameters_with_gradients(tmp_path):
    torch = pytest.importorskip("torch")
    path, feeds = _build(tmp_path, "Gemm")
    model = fonnx.load(path)
    params = dict(model.named_parameters())
    assert set(params) == {"w", "c"} and all(p.requires_grad for p in params.values())
    x = fb.tensor(feeds["a"])
    y = model(x)
    (y * y).sum().backward()
    a = torch.tensor(feeds["a"])
    w = torch.tensor(params["w"].data, requires_grad=True)
    c = torch.tensor(params["c"].data, requires_grad=True)
    yt = 0.5 * a @ w.T + 2.0 * c
    (yt * yt).sum().backward()
    np.testing.assert_allclose(params["w"].grad.numpy(), w.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(params["c"].grad.numpy(), c.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_parameter_names_are_valid_attributes(tmp_path):
    mk = _h().make_node
    path = _model(tmp_path, [mk("Add", ["x", "layer.0/weight:0"], ["y"])],
                  [("x", _r(3))], [("y", np.float32)], [("layer.0/weight:0", _r(3))])
    model = fonnx.load(path)
    (name,) = dict(model.named_parameters())
    assert name.isidentifier() and model.onnx_names[name] == "layer.0/weight:0"


def test_batchnorm_train_uses_batch_statistics_and_updates_running_stats(tmp_path):
    path, feeds = _build(tmp_path, "BatchNormalization")
    model = fonnx.load(path)
    assert not model.training
    x = feeds["x"]
    mean_before = model.m.data.copy()
    np.testing.assert_allclose(model(fb.tensor(x)).detach().numpy(), _ort(path, feeds)[0],
                               rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(model.m.data, mean_before)  # eval: untouched
    model.train()
    y = model(fb.tensor(x)).detach().numpy()
    mu, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    s, b = model.s.data, model.b.data
    want = (x - mu[:, None, None]) / np.sqrt(var[:, None, None] + 1e-3) * s[:, None, None] \
        + b[:, None, None]
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)
    # filterbank's batch norm update, PyTorch momentum = 1 - ONNX momentum (0.9)
    np.testing.assert_allclose(model.m.data, 0.9 * mean_before + 0.1 * mu, rtol=1e-5, atol=1e-6)
    assert "m" not in dict(model.named_parameters())  # running stats are buffers


def test_dropout_train_vs_eval(tmp_path):
    mk = _h().make_node
    x = np.ones((64, 64), np.float32)
    path = _model(tmp_path, [mk("Dropout", ["x", "r"], ["y"])], [("x", x)], [("y", np.float32)],
                  [("r", np.array(0.5, np.float32))])
    model = fonnx.load(path)
    np.testing.assert_array_equal(model(fb.tensor(x)).detach().numpy(), x)
    model.train()
    y = model(fb.tensor(x)).detach().numpy()
    assert set(np.unique(y)) <= {0.0, 2.0} and 0.4 < (y == 0).mean() < 0.6


def test_softmax_axis_semantics_differ_between_opset_11_and_13(tmp_path):
    mk = _h().make_node
    x = _r(2, 3, 4)
    outs = []
    for opset in (11, 13):
        path = _model(tmp_path, [mk("Softmax", ["x"], ["y"], axis=1)], [("x", x)],
                      [("y", np.float32)], opset=opset, name=f"s{opset}.onnx")
        outs.append(_check(path, {"x": x})[0])
    np.testing.assert_allclose(outs[0].reshape(2, -1).sum(-1), 1, rtol=1e-5)  # 2-d rows
    np.testing.assert_allclose(outs[1].sum(1), 1, rtol=1e-5)  # along axis 1 only
    assert not np.allclose(outs[0], outs[1])


def test_linear_as_gemm_or_transpose_matmul_add(tmp_path):
    mk = _h().make_node
    x, w, b = _r(4, 5), _r(3, 5), _r(3)
    gemm = _model(tmp_path, [mk("Gemm", ["x", "w", "b"], ["y"], transB=1)], [("x", x)],
                  [("y", np.float32)], [("w", w), ("b", b)], name="gemm.onnx")
    mm = _model(tmp_path, [mk("Transpose", ["w"], ["wt"]), mk("MatMul", ["x", "wt"], ["t"]),
                           mk("Add", ["t", "b"], ["y"])], [("x", x)], [("y", np.float32)],
                [("w", w), ("b", b)], name="mm.onnx")
    y1, y2 = _check(gemm, {"x": x})[0], _check(mm, {"x": x})[0]
    np.testing.assert_allclose(y1, y2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y1, x @ w.T + b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape,want", [([0, -1], (2, 108)), ([-1, 6], (36, 6)),
                                        ([0, 0, -1], (2, 3, 36))])
def test_reshape_zero_and_minus_one(tmp_path, shape, want):
    mk = _h().make_node
    x = _r(2, 3, 6, 6)
    path = _model(tmp_path, [mk("Reshape", ["x", "s"], ["y"])], [("x", x)],
                  [("y", np.float32)], [("s", np.array(shape, np.int64))])
    assert _check(path, {"x": x})[0].shape == want


def test_unsupported_op_names_it(tmp_path):
    mk = _h().make_node
    path = _model(tmp_path, [mk("Einsum", ["x"], ["y"], equation="ii->i")], [("x", _r(3, 3))],
                  [("y", np.float32)])
    with pytest.raises(NotImplementedError, match="Einsum"):
        fonnx.load(path)


def test_float64_stays_float64(tmp_path):
    path, _ = _build(tmp_path, "Activations")
    x = _r(4, 5, dtype=np.float64)
    mk = _h().make_node
    path = _model(tmp_path, [mk("Softmax", ["a"], ["t"]), mk("Gemm", ["t", "t"], ["y"],
                                                              transB=1)],
                  [("a", x)], [("y", np.float64)], name="f64.onnx")
    assert _check(path, {"a": x})[0].dtype == np.float64


# ------------------------------------------------------------------------ malformed files
def _gemm_file(tmp_path):
    return _build(tmp_path, "Gemm")[0]


def test_truncated_file(tmp_path):
    path = _gemm_file(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=str(path.name)):
        fonnx.load(path)


def test_not_an_onnx_file(tmp_path):
    path = tmp_path / "notes.onnx"
    path.write_text("just some text, not a protobuf\n" * 10)
    with pytest.raises(ValueError, match="not an ONNX model"):
        fonnx.load(path)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="not an ONNX model"):
        fonnx.load(empty)


def _external_model(tmp_path, location, length=None):
    onnx = pytest.importorskip("onnx")
    path = _gemm_file(tmp_path)
    model = onnx.load(str(path))
    t = model.graph.initializer[0]
    t.ClearField("raw_data")
    t.ClearField("float_data")
    t.data_location = onnx.TensorProto.EXTERNAL
    entry = t.external_data.add()
    entry.key, entry.value = "location", location
    if length is not None:
        e = t.external_data.add()
        e.key, e.value = "length", str(length)
    onnx.save(model, str(path))
    return path


def test_external_data_missing_file(tmp_path):
    path = _external_model(tmp_path, "weights.bin")
    with pytest.raises(ValueError, match="weights.bin.*does not exist"):
        fonnx.load(path)


def test_external_data_outside_the_model_folder(tmp_path):
    (tmp_path / "secret.bin").write_bytes(b"\0" * 60)
    sub = tmp_path / "model"
    sub.mkdir()
    path = _external_model(sub, "../secret.bin")
    with pytest.raises(ValueError, match="outside"):
        fonnx.load(path)
    path = _external_model(sub, str(tmp_path / "secret.bin"))
    with pytest.raises(ValueError, match="absolute"):
        fonnx.load(path)


def test_external_data_present_and_short(tmp_path):
    path = _external_model(tmp_path, "w.bin")
    w = _r(3, 5)
    (tmp_path / "w.bin").write_bytes(w.tobytes())
    model = fonnx.load(path)
    np.testing.assert_array_equal(model.w.data, w)
    (tmp_path / "w.bin").write_bytes(w.tobytes()[:20])
    with pytest.raises(ValueError, match="fewer than"):
        fonnx.load(path)


def test_graph_with_a_cycle(tmp_path):
    mk = _h().make_node
    path = _model(tmp_path, [mk("Add", ["x", "b"], ["a"]), mk("Relu", ["a"], ["b"]),
                             mk("Identity", ["b"], ["y"])], [("x", _r(3))], [("y", np.float32)])
    with pytest.raises(ValueError, match="cycle"):
        fonnx.load(path)


def test_initializer_size_mismatch(tmp_path):
    onnx = pytest.importorskip("onnx")
    path = _gemm_file(tmp_path)
    model = onnx.load(str(path))
    model.graph.initializer[0].dims[0] = 4  # (4, 5) declared, (3, 5) stored
    onnx.save(model, str(path))
    with pytest.raises(ValueError, match=r"initializer 'w'.*80 bytes.*holds 60"):
        fonnx.load(path)


def test_absurd_dims_are_refused_before_allocating(tmp_path):
    onnx = pytest.importorskip("onnx")
    path = _gemm_file(tmp_path)
    model = onnx.load(str(path))
    t = model.graph.initializer[0]
    t.dims[:] = [2**40, 2**20]
    onnx.save(model, str(path))
    with pytest.raises(ValueError, match="more than the"):
        fonnx.load(path)
    t.dims[:] = [-1, 5]
    onnx.save(model, str(path))
    with pytest.raises(ValueError, match="negative dim"):
        fonnx.load(path)
