"""Optimizers and learning-rate schedulers, with PyTorch's names and semantics.

Example:
    >>> from minidl import optim                                   # doctest: +SKIP
    >>> opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)  # doctest: +SKIP
    >>> sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=90)  # doctest: +SKIP
"""

from . import lr_scheduler
from .adam import Adam, Adamax, AdamW, NAdam, RAdam
from .optimizer import Optimizer
from .sgd import SGD
from .adadelta import Adadelta
from .adagrad import Adagrad
from .lbfgs import LBFGS
from .rmsprop import RMSprop

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "lr_scheduler",
           "Adadelta", "Adagrad", "LBFGS", "RMSprop"]
