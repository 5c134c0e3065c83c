"""Plots (matplotlib, imported only when a plot is made): learning curves, confusion matrix."""

from filterbank.viz.confusion import plot_confusion_matrix
from filterbank.viz.curves import gap_message, plot_history, save_history_plot

__all__ = ["gap_message", "plot_confusion_matrix", "plot_history", "save_history_plot"]
