"""Plots (matplotlib, imported only when a plot is made): learning curves, confusion matrix,
learned filters."""

from filterbank.viz.confusion import plot_confusion_matrix
from filterbank.viz.curves import gap_message, plot_history, save_history_plot
from filterbank.viz.filters import plot_filters, save_filters_plot

__all__ = ["gap_message", "plot_confusion_matrix", "plot_filters", "plot_history",
           "save_filters_plot", "save_history_plot"]
