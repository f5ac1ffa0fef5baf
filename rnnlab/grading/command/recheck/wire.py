"""Messages between the grading process and a student's process: framing and a value codec.

The outside check (:mod:`rnnlab.grading.command.recheck`) sends a student's process cells to run
and calls of the student's functions, and receives results. Both ends load this file:
the grader imports it as ``rnnlab.grading.command.recheck.wire``; the student's process, started with
``python -I`` so that nothing of the grader's environment leaks in, loads it from its
path. It therefore imports only the standard library, and numpy or torch only when a
value needs them.

Whatever comes back from the student's process is untrusted, so decoding it only builds
plain values: JSON, Python's own containers (a namedtuple is rebuilt as a namedtuple of
the same fields), and numpy arrays read as ``.npy`` data with ``allow_pickle=False``. A
subclass of a number, string or container arrives as the plain value it holds, so an
``int`` or an array whose ``__eq__`` always says True is just a number or an array on
this side; an object of any other type arrives as an :class:`Unreadable` stand-in that
carries its type name. Only the other direction, grader to student, may carry pickles.
"""

from __future__ import annotations

import base64
import binascii
import collections
import collections.abc
import io
import json
import keyword
import os
import pickle
import select
import struct
import sys
import time
import types

MAX_MESSAGE = 64 * 1024 * 1024  # bytes; far above what any check exchanges
MAX_DEPTH = 32
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


def _npy(array) -> str:
    """An array without Python objects as the bytes of an ``.npy`` file (any dtype, byte order, shape)."""
    import numpy

    buffer = io.BytesIO()
    numpy.save(buffer, array, allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode()


def _from_npy(text):
    import numpy

    if type(text) is not str:
        raise WireError("array data must be text")
    try:
        array = numpy.load(io.BytesIO(base64.b64decode(text, validate=True)), allow_pickle=False)
    except (ValueError, EOFError, OSError, TypeError, binascii.Error) as exc:
        raise WireError(f"unreadable array: {exc}") from None
    if not isinstance(array, numpy.ndarray) or array.ndim > MAX_DEPTH:
        raise WireError("unreadable array")
    return array


def _numpy_fields(array, depth):
    """An ndarray of any dtype: ``.npy`` bytes, or its items one by one when it holds objects."""
    if array.dtype.hasobject:
        items = [encode(item, depth + 1) for item in array.ravel(order="C").tolist()]
        return {"objarray": {"shape": list(array.shape), "items": items}}
    return {"npy": _npy(array)}


def _tensor(value, torch, depth):
    tensor = value.detach()
    if tensor.layout != torch.strided:
        tensor = tensor.to_dense()
    tensor = tensor.cpu().resolve_conj().resolve_neg()
    fields = {"requires_grad": bool(value.requires_grad)}
    try:
        fields["npy"] = _npy(tensor.numpy())
    except (TypeError, RuntimeError):  # bfloat16, float8, ...: no numpy dtype; float32 holds them exactly
        try:
            fields["npy"], fields["dtype"] = _npy(tensor.to(torch.float32).numpy()), str(tensor.dtype)
        except (TypeError, RuntimeError):
            return {"opaque": f"Tensor of {tensor.dtype}"}
    return {"tensor": fields}


def _items(value, kind, depth, trusted):
    """The elements of a container, read through its base class (an override of ``__iter__``
    or ``__getitem__`` does not change what the container holds)."""
    return [encode(item, depth + 1, trusted) for item in kind.__iter__(value)]


def encode(value, depth: int = 0, trusted: bool = False):
    """A JSON-able description of ``value``.

    Carried as data, whatever their class: numbers, strings and bytes (subclasses as
    their plain value), tuples (namedtuples with their type name and fields), lists,
    sets and dicts and their subclasses, any mapping, numpy arrays and scalars of any
    dtype, tensors of any dtype, nested. ``trusted`` is for what the grader sends:
    objects the codec cannot describe (a ``torch.nn.Module`` argument, say) are pickled,
    for the student's side to unpickle. The student's side never sends pickles: a module
    it returns or changed travels as its parameters and buffers (:class:`ModuleState`),
    a function or module as a :class:`Reference`, anything else as an opaque type name.
    """
    if depth > MAX_DEPTH:
        return {"opaque": "too deeply nested"}
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, types.ModuleType):
        # First: a lazily imported module loads on any failed isinstance check (which reads
        # its __class__), and the base class's lookup of its name leaves it unloaded.
        return {"module": str(types.ModuleType.__getattribute__(value, "__name__"))}
    libraries = {str(getattr(cls, "__module__", "")).split(".")[0] for cls in type(value).__mro__}
    # A library is touched only when the value is one of its objects: a module imported
    # lazily and never used stays unloaded.
    numpy = sys.modules.get("numpy") if "numpy" in libraries else None
    torch = sys.modules.get("torch") if "torch" in libraries else None
    if numpy is not None and isinstance(value, numpy.ndarray):
        return _numpy_fields(numpy.asarray(value), depth)
    if numpy is not None and isinstance(value, numpy.generic):
        scalar = numpy.asarray(value)
        return {"npscalar": _npy(scalar)} if not scalar.dtype.hasobject else encode(value.item(), depth)
    if torch is not None and isinstance(value, torch.Tensor):
        return _tensor(value, torch, depth)
    # A subclass of a number or a string (an IntEnum, an int whose __eq__ lies): its value,
    # read through the base class.
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, complex):
        return {"complex": [complex.__getattribute__(value, "real"), complex.__getattribute__(value, "imag")]}
    if isinstance(value, (bytes, bytearray)):
        return {"bytes": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, tuple):
        items = _items(value, tuple, depth, trusted)
        fields = getattr(type(value), "_fields", None)
        if isinstance(fields, tuple) and len(fields) == len(items) and all(type(f) is str for f in fields):
            return {"namedtuple": {"name": type(value).__name__, "fields": list(fields), "values": items}}
        return {"tuple": items}
    if isinstance(value, list):
        return {"list": _items(value, list, depth, trusted)}
    if isinstance(value, (set, frozenset)):
        kind = frozenset if isinstance(value, frozenset) else set
        return {kind.__name__: _items(value, kind, depth, trusted)}
    if isinstance(value, dict):
        return {"dict": [[encode(k, depth + 1, trusted), encode(v, depth + 1, trusted)]
                         for k, v in dict.items(value)]}
    if torch is not None and isinstance(value, torch.nn.Module) and not trusted:
        tensors = [*value.named_parameters(), *value.named_buffers()]
        return {"module_state": [[name, encode(t.detach(), depth + 1), bool(t.requires_grad)] for name, t in tensors]}
    if trusted:
        return {"pickle": base64.b64encode(pickle.dumps(value)).decode()}
    if isinstance(value, collections.abc.Mapping):
        return {"dict": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    if callable(value):
        return {"function": str(getattr(value, "__qualname__", type(value).__name__))}
    return {"opaque": type(value).__name__}


def safe_name(text) -> str:
    """``text`` made into an identifier (a type name from the student's side, for a stand-in class)."""
    name = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in str(text))[:80]
    return name if name and not name[0].isdigit() else f"_{name}"


def _namedtuple(body, depth, allow_pickle):
    if type(body) is not dict or type(body.get("fields")) is not list or type(body.get("values")) is not list:
        raise WireError("malformed namedtuple")
    fields, values = body["fields"], [decode(v, depth + 1, allow_pickle) for v in body["values"]]
    if len(fields) != len(values) or not all(type(f) is str and f.isidentifier() and not keyword.iskeyword(f)
                                             and not f.startswith("_") for f in fields) or len(set(fields)) != len(fields):
        raise WireError("namedtuple with invalid fields")
    return collections.namedtuple(safe_name(body.get("name", "namedtuple")), fields)(*values)


def _object_array(body, depth, allow_pickle):
    import numpy

    shape = body.get("shape") if type(body) is dict else None
    if not isinstance(shape, list) or len(shape) > MAX_DEPTH or not all(type(n) is int and n >= 0 for n in shape):
        raise WireError("object array with an invalid shape")
    items = body.get("items")
    count = 1
    for n in shape:
        count *= n
    if type(items) is not list or len(items) != count:
        raise WireError("object array whose items do not match its shape")
    array = numpy.empty(count, dtype=object)
    for index, item in enumerate(items):
        array[index] = decode(item, depth + 1, allow_pickle)
    return array.reshape(shape)


def _decoded_tensor(body):
    import torch

    if type(body) is not dict:
        raise WireError("malformed tensor")
    tensor = torch.from_numpy(_from_npy(body.get("npy")).copy())
    name = body.get("dtype")
    if name is not None:
        dtypes = {str(d): d for d in vars(torch).values() if isinstance(d, torch.dtype)}
        if name not in dtypes:
            raise WireError(f"tensor of an unknown dtype {str(name)[:40]!r}")
        tensor = tensor.to(dtypes[name])
    if body.get("requires_grad") is True and (tensor.is_floating_point() or tensor.is_complex()):
        tensor.requires_grad_(True)
    return tensor


def decode(obj, depth: int = 0, allow_pickle: bool = False):
    """The value that :func:`encode` described; anything malformed raises :class:`WireError`.

    Pickles are refused unless ``allow_pickle`` (only the student's side, reading what
    the grader sent, allows them); arrays are read with ``allow_pickle=False``.
    """
    if depth > MAX_DEPTH + 1:
        raise WireError("value nested too deeply")
    if obj is None or type(obj) in (bool, int, float, str):
        return obj
    if type(obj) is not dict or len(obj) != 1:
        raise WireError(f"unexpected value of type {type(obj).__name__}")
    (tag, body), = obj.items()
    if tag in ("list", "tuple", "set", "frozenset") and type(body) is list:
        items = [decode(v, depth + 1, allow_pickle) for v in body]
        try:
            return {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}[tag](items)
        except TypeError:
            raise WireError(f"{tag} of unhashable items") from None
    if tag == "namedtuple":
        return _namedtuple(body, depth, allow_pickle)
    if tag == "dict" and type(body) is list:
        pairs = {}
        for pair in body:
            if type(pair) is not list or len(pair) != 2:
                raise WireError("malformed dict entry")
            try:
                pairs[decode(pair[0], depth + 1, allow_pickle)] = decode(pair[1], depth + 1, allow_pickle)
            except TypeError:
                raise WireError("dict with an unhashable key") from None
        return pairs
    if tag == "complex" and type(body) is list and len(body) == 2 and all(type(v) in (int, float) for v in body):
        return complex(*body)
    if tag == "bytes" and type(body) is str:
        try:
            return base64.b64decode(body, validate=True)
        except binascii.Error:
            raise WireError("malformed bytes") from None
    if tag == "npy":
        return _from_npy(body)
    if tag == "npscalar":
        return _from_npy(body)[()]
    if tag == "objarray":
        return _object_array(body, depth, allow_pickle)
    if tag == "tensor":
        return _decoded_tensor(body)
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
