"""A torch.nn recurrent module and its rnnlab twin with the same weights: the tests' oracle pair;
and a fixture for tests that train tiny models."""

import pytest
import torch

import rnnlab

MODES = ["RNN", "GRU", "LSTM"]
"""The recurrent modules rnnlab and torch.nn share, by class name: the one list of kinds the
tests iterate over (written here, not read from rnnlab's own table, which is under test)."""

WITH_CELL_STATE = {"LSTM"}
"""The modules whose state is a pair ``(h, c)``: they take ``hx=(h_0, c_0)`` and return ``(h_n, c_n)``."""


def make_pair(mode, seed, **options):
    """A torch.nn module and an rnnlab module holding the same float64 weights."""
    torch.manual_seed(seed)
    reference = getattr(torch.nn, mode)(**options).double()
    ours = getattr(rnnlab, mode)(**options).double()
    ours.load_state_dict(reference.state_dict())
    return reference, ours


@pytest.fixture
def one_thread():
    """Tiny models on 2 busy cores run many times faster on one torch thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
