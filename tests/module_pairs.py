"""A torch.nn recurrent module and its rnnlab twin with the same weights: the tests' oracle pair."""

import torch

import rnnlab


def make_pair(mode, seed, **options):
    """A torch.nn module and an rnnlab module holding the same float64 weights."""
    torch.manual_seed(seed)
    reference = getattr(torch.nn, mode)(**options).double()
    ours = getattr(rnnlab, mode)(**options).double()
    ours.load_state_dict(reference.state_dict())
    return reference, ours
