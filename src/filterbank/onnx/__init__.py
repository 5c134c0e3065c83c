"""ONNX export and import (needs the ``onnx`` package: ``pip install 'filterbank[onnx]'``).

``export(model, x, path)`` writes a filterbank model as ONNX; ``load(path)`` imports an ONNX
model as a filterbank ``nn.Module`` (trainable, explainable); ``run(path, inputs)`` runs one
once, the backend contract of the ONNX node-test harness in tests/onnx/conformance/.
"""

from filterbank.onnx.export import export
from filterbank.onnx.importer import OnnxModule, load, run
