"""Which library implementations a student's function reached while it ran.

The outside check's student process (:mod:`rnnlab.grading.command.recheck.child`) runs every call of a
student's function under :class:`LibraryTracer`, a ``sys.setprofile`` hook that notes
each call into a library implementation of a recurrent network, whatever name or alias
reached it:

- ``rnnlab``'s reference code (its cells, modules, recurrences and gradient tools: the
  files named in ``RNNLAB_IMPLEMENTATIONS``);
- PyTorch's recurrent modules, anything run from ``torch/nn/modules/rnn.py``
  (``torch.nn.RNNCell``, ``GRUCell``, ``LSTMCell``, ``RNN``, ``GRU``, ``LSTM``: built or
  called);
- PyTorch's functional and internal forms, the operators whose name is a recurrent one
  (``rnn_tanh_cell``, ``gru_cell``, ``lstm``, ``_thnn_fused_gru_cell``, ``mkldnn_rnn_layer``,
  ...), called as ``torch.gru_cell``, ``torch._VF.gru_cell``, ``torch.ops.aten.gru_cell``
  or any alias of them.

Ordinary arithmetic (``np.tanh``, ``torch.sigmoid``, ``@``, ``torch.chunk``, ...) is
none of these. Whether the evidence matters is the grader's decision
(:mod:`rnnlab.grading.command.recheck.reference_use`): this file only observes. It runs in the student's
process, so it imports only the standard library; the child loads it from its path.
"""

import os
import re
import sys
import threading

# The reference package's implementations, relative to its folder.
RNNLAB_IMPLEMENTATIONS = ("cells.py", "modules.py", "recurrence.py", "gradients.py", "sizing.py")
_TORCH_MODULES = os.path.join("torch", "nn", "modules", "rnn.py")
_TORCH_OPS = os.path.join("torch", "_ops.py")
# An operator is recurrent when one of the words of its name is rnn, gru or lstm.
RECURRENT_OPERATOR = re.compile(r"(^|[_:.])(rnn|gru|lstm)(_|$|\.)")


def recurrent_operator(name) -> bool:
    """True for the name of one of PyTorch's recurrent operators (``aten::gru_cell``, ``lstm``)."""
    return isinstance(name, str) and bool(RECURRENT_OPERATOR.search(name.lower()))


class LibraryTracer:
    """A profile hook collecting evidence of library implementations being called.

    ``rnnlab_dir`` is the folder of the ``rnnlab`` package whose implementations count.
    Only the entry into a library is noted (a call from code outside it), with the number
    of times. :meth:`start` installs the hook for this thread and new threads, :meth:`stop`
    removes it and returns the evidence as ``[[text, count], ...]`` (at most ``limit``),
    with a line first when the code under trace had removed or replaced the hook.
    """

    def __init__(self, rnnlab_dir, limit=12):
        self.files = {os.path.join(os.path.realpath(rnnlab_dir), name) for name in RNNLAB_IMPLEMENTATIONS}
        self.limit = limit
        self.evidence = {}
        self._checked = {}

    def _kind(self, filename):
        """"rnnlab", "torch.nn", "torch.ops" or None for the file a Python function lives in."""
        kind = self._checked.get(filename, False)
        if kind is False:
            path = os.path.realpath(filename) if not filename.startswith("<") else filename
            kind = ("rnnlab" if path in self.files else "torch.nn" if path.endswith(_TORCH_MODULES)
                    else "torch.ops" if path.endswith(_TORCH_OPS) else None)
            self._checked[filename] = kind
        return kind

    def _note(self, text):
        self.evidence[text] = self.evidence.get(text, 0) + 1

    def __call__(self, frame, event, arg):
        if event == "call":
            kind = self._kind(frame.f_code.co_filename)
            if kind in ("rnnlab", "torch.nn") and frame.f_back is not None \
                    and self._kind(frame.f_back.f_code.co_filename) == kind:
                return  # inside the library already: its entry was noted
            if kind == "rnnlab":
                module = os.path.splitext(os.path.basename(frame.f_code.co_filename))[0]
                self._note(f"rnnlab.{module}.{getattr(frame.f_code, 'co_qualname', frame.f_code.co_name)}")
            elif kind == "torch.nn":
                owner = frame.f_locals.get("self")
                name = type(owner).__name__ if owner is not None else frame.f_code.co_name
                self._note(f"torch.nn.{name} (torch/nn/modules/rnn.py)")
            elif kind == "torch.ops" and frame.f_code.co_name == "__call__":
                operator = getattr(frame.f_locals.get("self"), "_name", None)
                if recurrent_operator(operator):
                    self._note(f"torch.ops operator {operator}")
        elif event == "c_call":
            name = getattr(arg, "__name__", None)
            module = getattr(arg, "__module__", None) or ""
            if isinstance(module, str) and module.startswith("torch") and recurrent_operator(name):
                self._note(f"torch operator {name} ({module}.{name})")

    def start(self):
        self.evidence.clear()
        threading.setprofile(self)
        sys.setprofile(self)

    def stop(self) -> list:
        intact = sys.getprofile() is self
        sys.setprofile(None)
        threading.setprofile(None)
        found = [[text, count] for text, count in sorted(self.evidence.items())]
        if not intact:
            found.insert(0, ["the call removed or replaced the grader's call tracing (sys.setprofile)", 1])
        return found[:self.limit]
