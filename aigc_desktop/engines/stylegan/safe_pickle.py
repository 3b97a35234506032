"""A restricted unpickler for NVIDIA StyleGAN network pickles.

NVIDIA's `torch_utils.persistence` pickles every network as `_reconstruct_persistent_obj(meta)`, where
`meta` holds the whole Python source of the module that defined the class; a normal unpickle executes
that source. Here the reconstruction is replaced by `PersistentStub`, which keeps the class name and the
object's state (its `__dict__`: `_parameters`, `_buffers`, `_modules`, `_init_kwargs`, ...) and never runs
anything. Only tensor, storage and numpy-array rebuilding and plain containers are allowed; any other
global the pickle names is refused with `UnsafePickleError` before it could run.

Legacy tensor storages arrive as `torch.storage._load_from_bytes(bytes)`, which would call
`torch.load(weights_only=False)`; they are read with `torch.load(..., weights_only=True)` instead.
"""

from __future__ import annotations

import codecs
import collections
import io
import os
import pickle
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

import torch

from aigc_desktop.core.errors import ModelLoadError
from aigc_desktop.core.safe_io import regular_file
from aigc_desktop.core.torch_files import BoundedReader, check_legacy_bytes


class UnsafePickleError(ModelLoadError):
    """The pickle asks for something a network pickle never needs (it may be malicious)."""


class EasyDict(dict):
    """Stands in for dnnlib.util.EasyDict: a dict whose keys are also attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


class PersistentStub:
    """What NVIDIA's persistent class would have become, minus its code: class name + state."""

    def __init__(self, class_name: str, state: dict[str, Any] | None, version: Any = None) -> None:
        self.class_name = class_name
        self.state = state if isinstance(state, dict) else {}
        self.version = version

    def __setstate__(self, state: Any) -> None:  # pickle BUILD on a stub: merge, never execute
        if isinstance(state, dict):
            self.state.update(state)

    @property
    def short_name(self) -> str:
        return self.class_name.rsplit(".", 1)[-1]

    @property
    def init_kwargs(self) -> dict[str, Any]:
        return dict(self.state.get("_init_kwargs") or {})

    @property
    def init_args(self) -> tuple[Any, ...]:
        return tuple(self.state.get("_init_args") or ())

    def child(self, name: str) -> "PersistentStub | None":
        child = (self.state.get("_modules") or {}).get(name)
        return child if isinstance(child, PersistentStub) else None

    def __repr__(self) -> str:
        return f"PersistentStub({self.class_name!r})"


def _reconstruct_persistent_obj(meta: Any) -> PersistentStub:
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise UnsafePickleError("the pickle holds a persistent object of an unknown type")
    # meta["module_src"] is deliberately ignored: it is the code a normal unpickle would execute.
    return PersistentStub(str(meta.get("class_name", "")), meta.get("state"), meta.get("version"))


def _load_storage_bytes(data: bytes) -> Any:
    """A storage saved with torch.save into bytes, read back without arbitrary unpickling."""
    check_legacy_bytes(bytes(data), "a tensor in the pickle")  # its declared size against its bytes first
    try:
        return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - any failure here is a corrupted/unsafe file
        raise ModelLoadError(f"a tensor in the pickle could not be read safely: {exc}") from None


def _codecs_encode(text: str, encoding: str = "utf-8") -> bytes:
    """Protocol-2 pickles spell bytes as _codecs.encode(str, 'latin1')."""
    if encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"unexpected byte encoding '{encoding}' in the pickle")
    return codecs.encode(text, encoding)


_TENSOR_TYPES = (torch.Tensor, torch.nn.Parameter)
_REBUILDERS = {torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter}
if hasattr(torch._utils, "_rebuild_parameter_with_state"):
    _REBUILDERS.add(torch._utils._rebuild_parameter_with_state)


def _rebuild_from_type_v2(func: Callable, new_type: type, args: tuple, state: Any) -> Any:
    """Tensor subclasses with Python state: only plain tensors and parameters are allowed."""
    if func not in _REBUILDERS and func is not torch.Tensor._make_subclass:
        raise UnsafePickleError("the pickle rebuilds a tensor with an unexpected function")
    if new_type not in _TENSOR_TYPES:
        raise UnsafePickleError(f"the pickle rebuilds a tensor of type {getattr(new_type, '__name__', new_type)}")
    return torch._utils._rebuild_from_type_v2(func, new_type, args, state)


def _copyreg_reconstructor(cls: type, base: type, state: Any) -> Any:
    """Protocol 0/1 objects: only our EasyDict stand-in and plain containers."""
    if cls not in (EasyDict, collections.OrderedDict, dict) or base not in (dict, object):
        raise UnsafePickleError(f"the pickle builds an object of type {getattr(cls, '__name__', cls)}")
    obj = base.__new__(cls) if base is object else base.__new__(cls, state)
    if base is dict and state is not None:
        dict.__init__(obj, state)
    return obj


def _allowed_globals() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("_codecs", "encode"): _codecs_encode,
        ("copyreg", "_reconstructor"): _copyreg_reconstructor,
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
        ("torch._utils", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
        ("torch", "Tensor"): torch.Tensor,
        ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
        ("torch", "device"): torch.device,
        ("torch.storage", "_load_from_bytes"): _load_storage_bytes,
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
        ("dnnlib.util", "EasyDict"): EasyDict,
        ("dnnlib", "EasyDict"): EasyDict,
    }
    if hasattr(torch._utils, "_rebuild_parameter_with_state"):
        allowed[("torch._utils", "_rebuild_parameter_with_state")] = torch._utils._rebuild_parameter_with_state
    for name in ("float16", "float32", "float64", "bfloat16", "int8", "int16", "int32", "int64", "uint8", "bool"):
        allowed[("torch", name)] = getattr(torch, name)
    import numpy as np

    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = _numpy_reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = _numpy_scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = _numpy_frombuffer  # arrays at protocol 5
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    return allowed


def _numpy_reconstruct(cls: type, shape: Any, dtype: Any) -> Any:
    import numpy as np

    if cls is not np.ndarray:
        raise UnsafePickleError("the pickle rebuilds an array of an unexpected type")
    return np.ndarray.__new__(cls, shape, dtype)


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    import numpy as np

    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise UnsafePickleError("the pickle rebuilds a numpy scalar of an unexpected type")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


# Python 3 writes protocols 0-2 with the Python 2 module names (pickle's fix_imports) and its own find_class
# maps them back; an overriding find_class has to do the same or such files (sets, bytes) are refused.
_PYTHON2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}


def _numpy_frombuffer(buf: Any, dtype: Any, shape: Any, order: str = "C") -> Any:
    """Protocol 5 spells a numpy array as its raw bytes + dtype + shape (numpy's own `_frombuffer`)."""
    import numpy as np

    if not isinstance(dtype, np.dtype) or dtype.hasobject or order not in ("C", "F"):
        raise UnsafePickleError("the pickle rebuilds a numpy array of an unexpected type")
    if not isinstance(buf, (bytes, bytearray, pickle.PickleBuffer)):
        raise UnsafePickleError("the pickle rebuilds a numpy array from an unexpected buffer")
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order=order).copy(order=order)


class RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO) -> None:
        super().__init__(file)
        self._allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        module = _PYTHON2_MODULES.get(module, module)
        target = self._allowed.get((module, name))
        if target is None and module.startswith("dnnlib.tflib"):
            raise ModelLoadError("this is a TensorFlow StyleGAN pickle (dnnlib.tflib); only PyTorch network "
                                 "pickles (StyleGAN2-ADA-PyTorch, StyleGAN3) and rosinality .pt files load")
        if target is None:
            raise UnsafePickleError(
                f"refused: the pickle asks to run '{module}.{name}', which a network pickle never needs "
                f"(the file may be malicious)")
        return target

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refused: the pickle uses persistent ids (not an NVIDIA network pickle)")


def load(path: str | Path) -> Any:
    """Unpickle a file with the restricted unpickler. Raises ModelLoadError with one clear line."""
    path = Path(path)
    try:
        real = regular_file(path, "network pickle") if os.path.lexists(path) else path  # never a FIFO or device
        with open(real, "rb") as fh:
            # Reads never ask for more than the file holds (an opcode may claim 2**60 bytes).
            return RestrictedUnpickler(BoundedReader(fh, os.path.getsize(real))).load()
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{path.name}: {exc}") from None
    except ModelLoadError as exc:
        raise ModelLoadError(f"{path.name}: {exc}") from None
    except FileNotFoundError:
        raise ModelLoadError(f"File not found: {path}") from None
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, IndexError, KeyError, AttributeError,
            RuntimeError, OverflowError, MemoryError) as exc:
        kind = "truncated" if isinstance(exc, EOFError) or "truncated" in str(exc) else "corrupted"
        raise ModelLoadError(f"{path.name} is {kind} or not a network pickle ({type(exc).__name__}: "
                             f"{str(exc)[:120] or 'no detail'})") from None


def loads(data: bytes) -> Any:
    return RestrictedUnpickler(io.BytesIO(data)).load()


# ----------------------------------------------------------------------------------------- stub trees


def iter_tensors(stub: PersistentStub, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """Every parameter and buffer of a stub tree, with its dotted state-dict name."""
    state = stub.state
    for group in ("_parameters", "_buffers"):
        for name, value in (state.get(group) or {}).items():
            if value is None:
                continue  # e.g. StyleGAN3's identity filters are registered as None
            if not isinstance(value, torch.Tensor):
                raise ModelLoadError(f"{prefix}{name} in the pickle is not a tensor")
            yield prefix + name, value.detach()
    for name, child in (state.get("_modules") or {}).items():
        if child is None:
            continue
        if not isinstance(child, PersistentStub):
            raise ModelLoadError(f"module {prefix}{name} in the pickle has an unexpected form")
        yield from iter_tensors(child, prefix + name + ".")


def state_dict(stub: PersistentStub) -> dict[str, torch.Tensor]:
    return dict(iter_tensors(stub))
