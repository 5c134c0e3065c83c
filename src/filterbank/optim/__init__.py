"""Optimizers (``filterbank.optim.SGD`` ...) and learning-rate schedulers
(``filterbank.optim.lr_scheduler.StepLR`` ...)."""

from filterbank.optim import lr_scheduler
from filterbank.optim.adagrad import Adagrad
from filterbank.optim.adam import Adam
from filterbank.optim.adamw import AdamW
from filterbank.optim.optimizer import Optimizer
from filterbank.optim.rmsprop import RMSprop
from filterbank.optim.sgd import SGD

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler"]
