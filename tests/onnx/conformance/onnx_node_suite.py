#!/usr/bin/env python3
# Vendored unchanged (apart from this comment) from the ONNX node-test conformance harness
# given to this project (../shared/conformance/onnx_node_suite.py, built from the ONNX project's
# backend node tests, pinned to onnx 1.23.2): a CI clone may not have ../shared.
# Run by tests/onnx/test_conformance.py; excluded from ruff (pyproject) to stay byte-identical.
"""ONNX backend node-test conformance harness (external suite, not written by us).

Runs the official ONNX backend *node* tests (one small model per test dir:
model.onnx + test_data_set_*/input_*.pb / output_*.pb) through a pluggable
backend and reports pass / fail / error / skip counts.

Backend contract:   run(model_path: str, inputs: dict[str, np.ndarray]) -> list[np.ndarray]
  * inputs are ordered like the graph inputs (list(inputs.values()) is positional)
  * return the graph outputs, in graph-output order, as NumPy arrays
  * raise NotImplementedError for unsupported ops/attributes -> counted as SKIP

Usage:
  python onnx_node_suite.py                          # CNN op subset, onnxruntime reference
  python onnx_node_suite.py --backend mypkg.onnx_import:run
  python onnx_node_suite.py --all --json report.json # every node test
  python onnx_node_suite.py --ops Conv,MaxPool -v    # show failure details
  python onnx_node_suite.py --all --upgrade-opset 13 \
      --data-dir $(python -c "import onnx,os;print(os.path.dirname(onnx.__file__))")/backend/test/data/pytorch-converted

Data: recent onnx wheels no longer ship data/node/*.pb (onnx PR #7959); the
cases are built in memory. If --data-dir has no node tests they are written out
from the installed onnx package (a few seconds, ~56 MB). Results depend on the
onnx version: pin it (this suite was validated with onnx 1.23.2).
"""
from __future__ import annotations

import argparse
import glob
import importlib
import json
import os
import re
import sys
import time
import traceback

import numpy as np

RTOL, ATOL = 1e-3, 1e-5

CNN_OPS = (
    "Conv ConvTranspose MaxPool AveragePool GlobalAveragePool GlobalMaxPool Relu "
    "LeakyRelu Elu Sigmoid Tanh Softmax LogSoftmax Gemm MatMul BatchNormalization "
    "InstanceNormalization LayerNormalization GroupNormalization Dropout Flatten "
    "Reshape Concat Add Mul Sub Div Pad HardSigmoid HardSwish Mish Selu Clip"
).split()


# --------------------------------------------------------------------------- data
def materialize(out_dir: str) -> None:
    """Write onnx's in-memory node test cases to <out_dir>/node/test_*/ (canonical layout).

    onnx PR #7959 removed the .pb artifacts from the wheel; cases are now built in memory
    and exposed via onnx.backend.test.loader.load_model_tests(kind="node").
    """
    import onnx
    from onnx import numpy_helper
    from onnx.backend.test.loader import load_model_tests

    def ser(value, vi):
        t = vi.type
        if isinstance(value, onnx.TensorProto):
            return value.SerializeToString()
        if t.HasField("sequence_type"):
            return numpy_helper.from_list(value, vi.name).SerializeToString()
        if t.HasField("optional_type"):
            return numpy_helper.from_optional(value, vi.name).SerializeToString()
        if t.HasField("map_type"):
            return numpy_helper.from_dict(value, vi.name).SerializeToString()
        return numpy_helper.from_array(value, vi.name).SerializeToString()

    for case in load_model_tests(kind="node"):
        d = os.path.join(out_dir, "node", case.name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "model.onnx"), "wb") as f:
            f.write(case.model.SerializeToString())
        g = case.model.graph
        for i, (ins, outs) in enumerate(case.data_sets):
            ds = os.path.join(d, f"test_data_set_{i}")
            os.makedirs(ds, exist_ok=True)
            for kind, vals, vis in (("input", ins, g.input), ("output", outs, g.output)):
                for j, v in enumerate(vals):
                    with open(os.path.join(ds, f"{kind}_{j}.pb"), "wb") as f:
                        f.write(ser(v, vis[j]))


def node_dir_of(data_dir: str) -> str:
    d = os.path.join(data_dir, "node") if os.path.isdir(os.path.join(data_dir, "node")) else data_dir
    return d


def op_index(node_dir: str) -> dict[str, str]:
    """Map test dir -> op_type under test (expanded/function tests -> op of base test)."""
    import onnx

    op_of: dict[str, str | None] = {}
    for d in sorted(os.listdir(node_dir)):
        p = os.path.join(node_dir, d, "model.onnx")
        if not d.startswith("test_") or not os.path.exists(p):
            continue
        g = onnx.load(p, load_external_data=False).graph
        op_of[d] = g.node[0].op_type if len(g.node) == 1 else None
    for d, op in op_of.items():
        if op is None:
            base = re.sub(r"_expanded(_ver\d+)?$", "", d)
            op_of[d] = op_of.get(base) or "<multi-node>"
    return op_of  # type: ignore[return-value]


def load_pb(path: str) -> np.ndarray:
    """Load a serialized TensorProto (.pb) -> np.ndarray."""
    import onnx
    from onnx import numpy_helper

    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


# Expected outputs come from NumPy's RNG, so no other backend can reproduce them bit-for-bit.
RNG_DEPENDENT = {"test_training_dropout", "test_training_dropout_default",
                 "test_training_dropout_default_mask", "test_training_dropout_mask"}


# ------------------------------------------------------------------------ backend
def onnxruntime_run(model_path: str, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Reference backend (stand-in for 'our' importer)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    unsupported = ("NOT_IMPLEMENTED", "Unsupported model IR version", "is not a registered function/op",
                   "can't be converted to MLDataType", "is under development")
    try:
        sess = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
        return sess.run(None, inputs)
    except Exception as e:  # ORT version skew / exotic dtypes -> skip, not fail
        msg = " ".join(str(e).split())
        hit = next((u for u in unsupported if u in msg), None)
        if hit:  # keep the informative tail, e.g. "Unsupported model IR version: 14, max ... 13"
            raise NotImplementedError(msg[max(0, msg.index(hit) - 40):][:160]) from e
        raise


def resolve_backend(spec: str | None):
    if not spec:
        return onnxruntime_run
    mod, _, fn = spec.partition(":")
    return getattr(importlib.import_module(mod), fn or "run")


# ------------------------------------------------------------------------ compare
def compare(expected, actual, rtol: float, atol: float) -> None:
    if len(actual) != len(expected):
        raise AssertionError(f"got {len(actual)} outputs, expected {len(expected)}")
    for i, (ref, out) in enumerate(zip(expected, actual, strict=True)):
        out = np.asarray(out)
        if out.shape != ref.shape:
            raise AssertionError(f"output {i}: shape {out.shape} != expected {ref.shape}")
        if out.dtype != ref.dtype:
            raise AssertionError(f"output {i}: dtype {out.dtype} != expected {ref.dtype}")
        if ref.dtype == object or ref.dtype.kind in "biuSU":
            np.testing.assert_array_equal(out, ref, err_msg=f"output {i}")
        else:
            np.testing.assert_allclose(out.astype(np.float64), ref.astype(np.float64),
                                       rtol=rtol, atol=atol, equal_nan=True,
                                       err_msg=f"output {i}")


def run_case(case_dir: str, backend, rtol: float, atol: float,
             upgrade_opset: int | None = None, tmp_dir: str | None = None) -> tuple[str, str]:
    import onnx

    model_path = os.path.join(case_dir, "model.onnx")
    model = onnx.load(model_path, load_external_data=False)
    if upgrade_opset:  # e.g. old opset-6 pytorch-converted models -> modern opset
        from onnx import version_converter
        try:
            model = version_converter.convert_version(model, upgrade_opset)
        except Exception as e:
            return "skip", f"version_converter failed: {str(e)[:120]}"
        model_path = os.path.join(tmp_dir or ".", os.path.basename(case_dir) + ".onnx")
        onnx.save(model, model_path)
    graph = model.graph
    inits = {t.name for t in graph.initializer}
    in_names = [v.name for v in graph.input if v.name not in inits]  # IR<4 lists weights as inputs
    if not all(v.type.HasField("tensor_type") for v in list(graph.input) + list(graph.output)):
        return "skip", "non-tensor I/O (sequence/optional/map)"
    sets = sorted(glob.glob(os.path.join(case_dir, "test_data_set_*")))
    if not sets:
        return "skip", "no test_data_set"
    for ds in sets:
        ins = [load_pb(p) for p in sorted(glob.glob(os.path.join(ds, "input_*.pb")),
                                          key=lambda s: int(re.findall(r"(\d+)\.pb$", s)[0]))]
        outs = [load_pb(p) for p in sorted(glob.glob(os.path.join(ds, "output_*.pb")),
                                           key=lambda s: int(re.findall(r"(\d+)\.pb$", s)[0]))]
        if len(ins) != len(in_names):
            return "skip", f"{len(ins)} input files for {len(in_names)} graph inputs"
        try:
            got = backend(model_path, dict(zip(in_names, ins, strict=True)))
        except NotImplementedError as e:
            return "skip", f"unsupported: {e}"
        except Exception as e:  # backend crashed
            return "error", f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
        try:
            compare(outs, got, rtol, atol)
        except AssertionError as e:
            return "fail", " ".join(str(e).split())[:400]
    return "pass", ""


# --------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("ONNX_NODE_DATA", "/tmp/onnx_backend_testdata"),
                    help="dir holding node/test_* (created from the onnx package if missing)")
    ap.add_argument("--backend", help="module:function implementing run(model_path, inputs)")
    ap.add_argument("--ops", help="comma-separated op types (default: CNN subset)")
    ap.add_argument("--all", action="store_true", help="run every node test")
    ap.add_argument("--filter", help="regex on test dir name")
    ap.add_argument("--no-expanded", action="store_true", help="skip *_expanded function-body tests")
    ap.add_argument("--include-rng", action="store_true",
                    help="also run RNG-dependent training-mode Dropout tests (unportable)")
    ap.add_argument("--upgrade-opset", type=int, help="convert each model to this opset first "
                    "(useful for data/pytorch-converted, which is opset 6)")
    ap.add_argument("--rtol", type=float, default=RTOL)
    ap.add_argument("--atol", type=float, default=ATOL)
    ap.add_argument("--json", help="write per-test results here")
    ap.add_argument("--list", action="store_true", help="list selected test dirs per op and exit")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)

    import onnx

    nd = node_dir_of(a.data_dir)
    if not glob.glob(os.path.join(nd, "test_*", "model.onnx")):
        print(f"[setup] materializing node tests from onnx {onnx.__version__} into {a.data_dir}")
        materialize(a.data_dir)
        nd = os.path.join(a.data_dir, "node")
    ops = op_index(nd)
    wanted = None if a.all else set(a.ops.split(",") if a.ops else CNN_OPS)
    tests = [d for d, op in ops.items()
             if (wanted is None or op in wanted)
             and (not a.filter or re.search(a.filter, d))
             and not (a.no_expanded and "_expanded" in d)]
    if a.list:
        for op in sorted({ops[d] for d in tests}):
            names = [d for d in tests if ops[d] == op]
            print(f"{op} ({len(names)}): {' '.join(names)}")
        print(f"total {len(tests)} of {len(ops)}")
        return 0
    backend = resolve_backend(a.backend)
    print(f"onnx {onnx.__version__}; {len(ops)} node tests in {nd}; running {len(tests)}; "
          f"rtol={a.rtol} atol={a.atol}; backend={a.backend or 'onnxruntime (reference)'}")

    import tempfile
    tmp_dir = tempfile.mkdtemp(prefix="onnx_suite_") if a.upgrade_opset else None
    t0 = time.time()
    results, per_op = {}, {}
    for d in tests:
        try:
            if d in RNG_DEPENDENT and not a.include_rng:
                status, msg = "skip", "expected output depends on NumPy RNG"
            else:
                status, msg = run_case(os.path.join(nd, d), backend, a.rtol, a.atol,
                                       a.upgrade_opset, tmp_dir)
        except Exception:
            status, msg = "error", traceback.format_exc(limit=1).splitlines()[-1]
        results[d] = {"op": ops[d], "status": status, "msg": msg}
        c = per_op.setdefault(ops[d], {"pass": 0, "fail": 0, "error": 0, "skip": 0})
        c[status] += 1
        if a.verbose and status != "pass":
            print(f"  {status.upper():5s} {d}: {msg}")

    print(f"\n{'op':24s} pass fail error skip")
    for op in sorted(per_op):
        c = per_op[op]
        print(f"{op:24s} {c['pass']:4d} {c['fail']:4d} {c['error']:5d} {c['skip']:4d}")
    tot = {k: sum(c[k] for c in per_op.values()) for k in ("pass", "fail", "error", "skip")}
    print(f"{'TOTAL':24s} {tot['pass']:4d} {tot['fail']:4d} {tot['error']:5d} {tot['skip']:4d}"
          f"   ({time.time() - t0:.1f}s)")
    bad = [d for d, r in results.items() if r["status"] in ("fail", "error")]
    if bad and not a.verbose:
        print("not passing:", ", ".join(bad))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"onnx": onnx.__version__, "rtol": a.rtol, "atol": a.atol,
                       "totals": tot, "per_op": per_op, "results": results}, f, indent=1)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
