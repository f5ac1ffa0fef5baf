"""S models of one architecture run as one: the parameters stacked along a new first axis.

Training ten or more seeds of a small recurrent model one after the other leaves a CPU
mostly idle: each step multiplies a few tiny matrices. :class:`StackedModels` runs S
copies at once, following PyTorch's recipe for model ensembling:
``torch.func.stack_module_state`` stacks the parameters (each becomes one tensor with a
leading axis of size S), and ``torch.func.vmap`` over ``torch.func.functional_call`` runs
the architecture once for all of them. Linear layers, embeddings and the like are batched
by ``vmap`` itself; rnnlab's recurrences have their own ``vmap`` rule
(:mod:`rnnlab.recurrence`) that runs the S recurrences as one batched matrix product per
time step with the hand-written BPTT. ``torch.nn.RNN``/``GRU``/``LSTM`` layers, which
``vmap`` cannot batch, are replaced by their rnnlab twins (same parameter names and
results) in the stacked copy; the models given are never changed except by
:meth:`StackedModels.write_back`.

The models stay independent: the gradient of a sum of per-model losses with respect to
a stacked parameter holds each model's own gradient in its slice, and element-wise
optimisers (SGD, Adam, RMSprop, ...) update each slice as they would update that model
alone. :func:`rnnlab.train` uses this to train many seeds at once; a chapter with its own
loop uses the class directly::

    stack = rnnlab.StackedModels(models)              # S models, built under S seeds
    optimizer = torch.optim.Adam(stack.parameters(), lr=1e-3)
    state = None
    for inputs, targets in chunks:                     # inputs (S, T, B, I): one batch per model
        predictions, state = stack(inputs, state)      # a model returning (output, state)
        state = state.detach()                         # truncated BPTT: carry the state (S, ...), cut the graph
        losses = ((predictions - targets) ** 2).flatten(1).mean(1)   # (S,): one loss per model
        optimizer.zero_grad()
        losses.sum().backward()
        optimizer.step()
    stack.write_back()                                 # the S models now hold the trained weights
    scores = stack(validation_inputs, in_dims=None)    # the same inputs for every model: (S, ...)
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .modules import rnnlab_twin
from ._checks import describe

__all__ = ["StackedModels"]

_TORCH_RECURRENT = (nn.RNN, nn.GRU, nn.LSTM)


class StackedModels:
    """S models of one architecture with their parameters stacked, run as one.

    Arguments:
        models: a list (or tuple, or ``nn.ModuleList``) of S >= 1 modules of one class,
            with parameters and buffers of the same names and shapes, all in training or
            all in evaluation mode.
        randomness: what random operations inside the models do (``torch.func.vmap``'s
            ``randomness``): ``"error"`` (default) refuses them, ``"different"`` draws
            different random numbers for each model, ``"same"`` the same for all. Dropout
            is such an operation.

    Attributes:
        models: the list of the S modules given (in their order).
        params: ``{name: tensor}``, each parameter of the models stacked along a new
            first axis, shape ``(S, *shape)``; new leaf tensors that an optimiser can update.
        buffers: the buffers, stacked the same way.

    Raises ``TypeError`` for models that are not modules of one class and ``ValueError``
    when their parameters differ in names or shapes, naming the first that differs.
    """

    def __init__(self, models, *, randomness: str = "error"):
        self.models = _check_models(models)
        if randomness not in ("error", "different", "same"):
            raise ValueError(f'randomness must be "error", "different" or "same", got {randomness!r}')
        self.randomness = randomness
        self.params, self.buffers = torch.func.stack_module_state(self.models)
        self._base = _with_rnnlab_recurrences(self.models[0])

    def __len__(self) -> int:
        return len(self.models)

    def __repr__(self) -> str:
        return f"StackedModels({len(self)} x {type(self.models[0]).__name__})"

    def parameters(self) -> list[torch.Tensor]:
        """The stacked parameters that require gradients, ready for an optimiser."""
        return [p for p in self.params.values() if p.requires_grad]

    def named_parameters(self):
        """``(name, stacked parameter)`` pairs, as ``nn.Module.named_parameters``."""
        return iter(self.params.items())

    def train(self, mode: bool = True) -> "StackedModels":
        """Set training mode (dropout on) or evaluation mode, as ``nn.Module.train``."""
        self._base.train(mode)
        return self

    def eval(self) -> "StackedModels":
        """Set evaluation mode, as ``nn.Module.eval``."""
        return self.train(False)

    @property
    def training(self) -> bool:
        return self._base.training

    def __call__(self, *args, in_dims=0, select=None, **kwargs):
        """Run every model: ``stack(*args)`` is ``[model(*args_k) for each model k]``, stacked.

        ``in_dims`` says, for each positional argument, whether it holds one value per
        model along a leading axis of size S (``0``, the default) or one value shared by
        all models (``None``); an int or None applies to every argument, a tuple gives one
        entry per argument (tuples and lists of tensors are traversed; an argument without
        tensors, such as None, is always shared). Keyword arguments are shared by all models. ``select`` runs only the models at those positions
        (a list of ints); the per-model arguments then have that many entries and the
        gradients reach only those models' slices.

        Returns what the model returns, each tensor with a leading axis of size S (or
        ``len(select)``). For example, an :class:`rnnlab.SequenceModel` on inputs of shape
        (T, B, I): ``stack(x)`` with ``x`` (S, T, B, I) gives (S, B, output_size);
        ``stack(x, in_dims=None)`` with ``x`` (T, B, I) gives the same shape, every model
        on the same data.
        """
        params, buffers = self.params, self.buffers
        if select is not None:
            index = torch.as_tensor(select, dtype=torch.long)
            if index.dim() != 1 or index.numel() == 0 or not bool(((index >= 0) & (index < len(self))).all()):
                raise ValueError(f"select must be a non-empty list of model positions in [0, {len(self)}), "
                                 f"got {describe(select)}")
            params = {name: p.index_select(0, index) for name, p in params.items()}
            buffers = {name: b.index_select(0, index) for name, b in buffers.items()}
        arg_dims = in_dims if isinstance(in_dims, tuple) else (in_dims,) * len(args)
        if len(arg_dims) != len(args):
            raise ValueError(f"in_dims must have one entry per positional argument ({len(args)}), got {in_dims!r}")
        arg_dims = tuple(dim if _holds_tensors(arg) else None for arg, dim in zip(args, arg_dims))

        def one_model(params, buffers, *args):
            return torch.func.functional_call(self._base, (params, buffers), args, kwargs)

        run = torch.func.vmap(one_model, in_dims=(0, 0, *arg_dims), randomness=self.randomness)
        return run(params, buffers, *args)

    def state_of(self, position: int) -> dict[str, torch.Tensor]:
        """A copy of one model's slice: ``{name: tensor}`` for every parameter and buffer."""
        return {name: tensor[position].detach().clone() for name, tensor in (*self.params.items(), *self.buffers.items())}

    @torch.no_grad()
    def write_back(self) -> None:
        """Copy each model's slice of the stacked parameters and buffers into that model, in place."""
        for k, model in enumerate(self.models):
            for name, tensor in (*model.named_parameters(), *model.named_buffers()):
                source = self.params[name] if name in self.params else self.buffers[name]
                tensor.copy_(source[k])


def _holds_tensors(value) -> bool:
    return any(isinstance(leaf, torch.Tensor) for leaf in torch.utils._pytree.tree_leaves(value))


def _check_models(models) -> list[nn.Module]:
    if isinstance(models, nn.Module) and not isinstance(models, nn.ModuleList):
        raise TypeError(f"models must be a list of S modules of one architecture, got one {type(models).__name__}")
    if not isinstance(models, (list, tuple, nn.ModuleList)) or len(models) == 0:
        raise TypeError(f"models must be a non-empty list of modules of one architecture, got {describe(models)}")
    models = list(models)
    first = models[0]
    for k, model in enumerate(models):
        if not isinstance(model, nn.Module):
            raise TypeError(f"models[{k}] must be a torch.nn.Module, got {describe(model)}")
        if type(model) is not type(first):
            raise TypeError(f"models must be of one class: models[0] is a {type(first).__name__}, "
                            f"models[{k}] a {type(model).__name__}")
        if model.training != first.training:
            raise ValueError(f"models must all be in training mode or all in evaluation mode: models[0] "
                             f"has training={first.training}, models[{k}] training={model.training}")
        for kind in ("parameters", "buffers"):
            mine = {n: (tuple(t.shape), t.dtype, t.device) for n, t in getattr(model, f"named_{kind}")()}
            theirs = {n: (tuple(t.shape), t.dtype, t.device) for n, t in getattr(first, f"named_{kind}")()}
            if mine != theirs:
                name = next(n for n in [*theirs, *mine] if mine.get(n) != theirs.get(n))
                raise ValueError(f"models must share one architecture: {kind[:-1]} {name!r} is "
                                 f"{_layout(theirs.get(name))} in models[0] but {_layout(mine.get(name))} "
                                 f"in models[{k}]")
    return models


def _layout(entry) -> str:
    if entry is None:
        return "missing"
    shape, dtype, device = entry
    return f"{shape} {dtype} on {device}"


def _with_rnnlab_recurrences(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in which every torch.nn RNN/GRU/LSTM (exactly those classes) is
    replaced by its rnnlab twin, which ``vmap`` can batch."""
    if type(model) in _TORCH_RECURRENT:
        return rnnlab_twin(model)
    model = copy.deepcopy(model)
    for name, child in list(model.named_modules()):
        if type(child) in _TORCH_RECURRENT:
            parent_name, _, attribute = name.rpartition(".")
            setattr(model.get_submodule(parent_name), attribute, rnnlab_twin(child))
    return model
