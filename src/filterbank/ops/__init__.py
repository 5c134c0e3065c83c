"""Detection and vision operations with torchvision's names (``torchvision.ops``).

Every function takes NumPy arrays or Tensors: NumPy in gives NumPy out, a Tensor in gives a
Tensor out. ``box_convert``, ``box_area`` and ``box_iou`` are differentiable on Tensors.
"""

from filterbank.ops.boxes import batched_nms, box_area, box_convert, box_iou, nms

__all__ = ["batched_nms", "box_area", "box_convert", "box_iou", "nms"]
