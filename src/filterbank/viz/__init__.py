"""Plots (matplotlib, imported only when a plot is made): learning curves, confusion matrix,
learned filters, and what a network learned (feature maps, saliency, Grad-CAM, activation
maximisation, DeepDream, retrieval)."""

from filterbank.viz.confusion import plot_confusion_matrix
from filterbank.viz.curves import gap_message, plot_history, save_history_plot
from filterbank.viz.filters import plot_filters, save_filters_plot
from filterbank.viz.interpret import (
    conv_layers,
    denormalize,
    plot_activation_maximization,
    plot_attribution,
    plot_conv_filters,
    plot_dream,
    plot_feature_maps,
    plot_kernel,
    plot_retrieval,
    saliency_heatmap,
)

__all__ = ["gap_message", "plot_confusion_matrix", "plot_filters", "plot_history",
           "save_filters_plot", "save_history_plot",
           "conv_layers", "denormalize", "plot_activation_maximization", "plot_attribution",
           "plot_conv_filters", "plot_dream", "plot_feature_maps", "plot_kernel",
           "plot_retrieval", "saliency_heatmap"]
