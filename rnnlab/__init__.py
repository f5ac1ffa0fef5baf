"""rnnlab: reference recurrent networks (RNN, GRU, LSTM) that agree with torch.nn.

The cells hold the equations (``rnnlab.cells``), the modules run them over sequences with
a hand-written backward pass (``rnnlab.modules``, ``rnnlab.recurrence``), and
``hidden_grad_norms`` / ``plot_grad_norms`` measure how gradients travel back in time;
``rnnlab.tasks`` generates seeded synthetic sequence tasks, ``train`` fits a model to one,
``rnnlab.stats`` compares per-seed results (effect size, interval, Holm, verdict), and
``parameter_count`` / ``hidden_size_for_budget`` (``rnnlab.sizing``) give models of
different cells the same parameter budget.
"""

from . import stats, tasks
from .errors import DTypeError, ShapeError
from .cells import gru_cell, lstm_cell, rnn_cell
from .gradients import hidden_grad_norms
from .modules import GRU, LSTM, RNN
from .plotting import plot_grad_norms
from .sizing import hidden_size_for_budget, parameter_count
from .stacking import StackedModels
from .training import History, SequenceModel, train
from . import diagrams  # the book's cell diagrams, drawn as SVG: rnnlab.diagrams.gru()

__all__ = ["rnn_cell", "gru_cell", "lstm_cell", "RNN", "GRU", "LSTM", "hidden_grad_norms", "plot_grad_norms",
           "parameter_count", "hidden_size_for_budget",
           "stats", "tasks", "train", "History", "SequenceModel", "StackedModels", "ShapeError", "DTypeError"]
__version__ = "0.1.0"
