"""Messages between the grading process and a student's process: framing and a value codec.

The outside check (:mod:`rnnlab.grading.outside`) sends a student's process cells to run
and calls of the student's functions, and receives results. Both ends load this file:
the grader imports it as ``rnnlab.grading.wire``; the student's process, started with
``python -I`` so that nothing of the grader's environment leaks in, loads it from its
path. It therefore imports only the standard library, and numpy or torch only when a
value needs them.

Whatever comes back from the student's process is untrusted, so decoding it only builds
plain values: JSON, and arrays from raw bytes of a fixed list of dtypes. An object of any
other type arrives as an :class:`Unreadable` stand-in that carries its type name, so an
object whose ``__eq__`` always says True is just an unreadable value on this side. Only
the other direction, grader to student, may carry pickles.
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import select
import struct
import sys
import time
import types

MAX_MESSAGE = 64 * 1024 * 1024  # bytes; far above what any check exchanges
MAX_DEPTH = 32
DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float16", "float32", "float64")
_HEADER = struct.Struct("<Q")


class WireError(Exception):
    """A message that cannot be read: truncated, too large, malformed, or the peer went away."""


class WireTimeout(WireError):
    """No complete message before the deadline."""


class WireClosed(WireError):
    """The other end closed the channel: the process exited or was killed."""


# --- framing ----------------------------------------------------------------------------


def send(fd: int, message, deadline: float | None = None) -> None:
    """Write one message (a JSON-able value) to ``fd``; with a ``deadline`` ``fd`` must be non-blocking."""
    data = json.dumps(message).encode()
    if len(data) > MAX_MESSAGE:
        raise WireError(f"message of {len(data)} bytes exceeds the limit of {MAX_MESSAGE}")
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([], [fd], [], wait)[1]:
                raise WireTimeout("the other process stopped reading")
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            continue


def _read_exactly(fd: int, size: int, deadline: float | None) -> bytes:
    chunks, left = [], size
    while left:
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                raise WireTimeout("no reply before the deadline")
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise WireClosed("the other process closed the channel (it exited or was killed)")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def receive(fd: int, deadline: float | None = None):
    """Read one message from ``fd``; ``deadline`` is a ``time.monotonic()`` value or None."""
    (size,) = _HEADER.unpack(_read_exactly(fd, _HEADER.size, deadline))
    if size > MAX_MESSAGE:
        raise WireError(f"announced message of {size} bytes exceeds the limit of {MAX_MESSAGE}")
    try:
        return json.loads(_read_exactly(fd, size, deadline))
    except (ValueError, RecursionError) as exc:
        raise WireError(f"malformed message: {exc}") from None


# --- values -------------------------------------------------------------------------------


class Unreadable:
    """Stands for a value of a type the codec does not carry; its class is named after it."""

    def __repr__(self):
        return f"<unreadable {type(self).__name__} from the student's process>"


class ModuleState(Unreadable):
    """A ``torch.nn.Module`` of the student's side: (name, tensor, requires_grad) of each
    parameter and buffer, enough to copy an in-place change back into the grader's module."""

    def __init__(self, entries):
        self.entries = entries


class Reference:
    """A name that denotes a function or a module in the student's process."""

    def __init__(self, kind: str, name: str):
        self.kind, self.name = kind, name

    def __repr__(self):
        return f"<{self.kind} {self.name} in the student's process>"


def _array_fields(array):
    dtype = str(array.dtype)
    if dtype not in DTYPES:
        return None
    contiguous = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes(order="C")
    return {"dtype": dtype, "shape": list(array.shape), "data": base64.b64encode(contiguous).decode()}


def encode(value, depth: int = 0, trusted: bool = False):
    """A JSON-able description of ``value`` (containers, numbers, strings, arrays, tensors).

    ``trusted`` is for what the grader sends: objects the codec cannot describe (a
    ``torch.nn.Module`` argument, say) are pickled, for the student's side to unpickle.
    The student's side never sends pickles: a module it returns or changed travels as its
    parameters and buffers (:class:`ModuleState`), anything else as an opaque type name.
    """
    if depth > MAX_DEPTH:
        return {"opaque": "too deeply nested"}
    if value is None or type(value) in (bool, int, float, str):
        return value
    if type(value) in (list, tuple):
        return {type(value).__name__: [encode(v, depth + 1, trusted) for v in value]}
    if type(value) is dict and all(type(k) is str for k in value):
        return {"dict": [[k, encode(v, depth + 1, trusted)] for k, v in value.items()]}
    libraries = {cls.__module__.split(".")[0] for cls in type(value).__mro__}
    # A library is touched only when the value is one of its objects: a module imported
    # lazily and never used stays unloaded.
    numpy = sys.modules.get("numpy") if "numpy" in libraries else None
    torch = sys.modules.get("torch") if "torch" in libraries else None
    if numpy is not None and isinstance(value, numpy.ndarray):
        fields = _array_fields(numpy.asarray(value))
        return {"ndarray": fields} if fields else {"opaque": f"ndarray of {value.dtype}"}
    if numpy is not None and isinstance(value, numpy.generic):
        fields = _array_fields(numpy.asarray(value))
        return {"npscalar": fields} if fields else {"opaque": type(value).__name__}
    if torch is not None and isinstance(value, torch.Tensor):
        try:
            array = value.detach().cpu().resolve_conj().numpy()
        except (RuntimeError, TypeError):
            return {"opaque": "Tensor"}
        fields = _array_fields(array)
        return {"tensor": fields} if fields else {"opaque": f"Tensor of {value.dtype}"}
    if torch is not None and isinstance(value, torch.nn.Module) and not trusted:
        tensors = [*value.named_parameters(), *value.named_buffers()]
        return {"module_state": [[name, encode(t.detach(), depth + 1), bool(t.requires_grad)] for name, t in tensors]}
    if isinstance(value, types.ModuleType):  # the base class's lookup leaves a lazy module unloaded
        return {"module": str(types.ModuleType.__getattribute__(value, "__name__"))}
    if trusted:
        return {"pickle": base64.b64encode(pickle.dumps(value)).decode()}
    if callable(value):
        return {"function": str(getattr(value, "__qualname__", type(value).__name__))}
    return {"opaque": type(value).__name__}


def _array(fields, depth):
    import numpy

    if not isinstance(fields, dict) or fields.get("dtype") not in DTYPES:
        raise WireError("array with a missing or unsupported dtype")
    shape = fields.get("shape")
    if not isinstance(shape, list) or len(shape) > MAX_DEPTH or not all(
            type(n) is int and 0 <= n for n in shape):
        raise WireError("array with an invalid shape")
    data = base64.b64decode(str(fields.get("data", "")), validate=True)
    dtype = numpy.dtype(fields["dtype"]).newbyteorder("<")
    count = 1
    for n in shape:
        count *= n
    if count * dtype.itemsize != len(data):
        raise WireError("array whose data does not match its shape")
    return numpy.frombuffer(data, dtype=dtype).astype(dtype.newbyteorder("=")).reshape(shape)


def safe_name(text) -> str:
    """``text`` made into an identifier (a type name from the student's side, for a stand-in class)."""
    name = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in str(text))[:80]
    return name if name and not name[0].isdigit() else f"_{name}"


def decode(obj, depth: int = 0, allow_pickle: bool = False):
    """The value that :func:`encode` described; anything malformed raises :class:`WireError`.

    Pickles are refused unless ``allow_pickle`` (only the student's side, reading what
    the grader sent, allows them).
    """
    if depth > MAX_DEPTH + 1:
        raise WireError("value nested too deeply")
    if obj is None or type(obj) in (bool, int, float, str):
        return obj
    if type(obj) is not dict or len(obj) != 1:
        raise WireError(f"unexpected value of type {type(obj).__name__}")
    (tag, body), = obj.items()
    if tag in ("list", "tuple") and type(body) is list:
        items = [decode(v, depth + 1, allow_pickle) for v in body]
        return items if tag == "list" else tuple(items)
    if tag == "dict" and type(body) is list:
        pairs = {}
        for pair in body:
            if type(pair) is not list or len(pair) != 2 or type(pair[0]) is not str:
                raise WireError("malformed dict entry")
            pairs[pair[0]] = decode(pair[1], depth + 1, allow_pickle)
        return pairs
    if tag == "ndarray":
        return _array(body, depth)
    if tag == "npscalar":
        return _array(body, depth)[()]
    if tag == "tensor":
        import torch

        return torch.from_numpy(_array(body, depth).copy())
    if tag == "module_state" and type(body) is list:
        entries = []
        for entry in body:
            if type(entry) is not list or len(entry) != 3 or type(entry[0]) is not str or type(entry[2]) is not bool:
                raise WireError("malformed module state")
            entries.append((entry[0], decode(entry[1], depth + 1), entry[2]))
        return ModuleState(entries)
    if tag in ("module", "function") and type(body) is str:
        return Reference(tag, body)
    if tag == "opaque":
        return type(safe_name(body), (Unreadable,), {})()
    if tag == "pickle" and allow_pickle and type(body) is str:
        return pickle.loads(base64.b64decode(body))
    raise WireError(f"unknown value tag {tag!r}")
