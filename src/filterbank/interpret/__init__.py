"""See what a network learned: attribution maps and feature visualisation.

- :func:`saliency`: the gradient of a class score with respect to the input pixels.
- :func:`grad_cam`: Grad-CAM, a class-discriminative heatmap from a convolutional layer.
- :func:`activation_maximization`: the image that excites one channel most.
- :func:`deep_dream`: Google's DeepDream, amplifying what some layers see in an image.

Every function takes NumPy arrays or Tensors of shape (N, C, H, W), runs the model in eval
mode without touching its parameters' gradients, and returns NumPy arrays; the random ones
draw from a ``np.random.Generator`` seeded by ``seed``.
"""

from filterbank.interpret.attribution import GradCAMResult, grad_cam, saliency
from filterbank.interpret.dream import activation_maximization, deep_dream

__all__ = ["GradCAMResult", "activation_maximization", "deep_dream", "grad_cam", "saliency"]
