"""PyTorch checkpoints (``.pth``, ``torch.save``'s zip format) read as NumPy arrays, without torch.

A ``torch.save`` file (PyTorch >= 1.6) is a zip archive: ``<name>/data.pkl``
(a pickle whose tensors refer to storages by key), ``<name>/data/<key>``
(each storage's raw bytes) and ``<name>/byteorder``. `read_pth` unpickles
``data.pkl`` with a restricted unpickler: it resolves only
``collections.OrderedDict``, the torch tensor / parameter rebuild functions
and the torch storage types, each to a NumPy stand-in; any other class or
function named in the pickle stops the read with a `ValueError` (a pickle
can run arbitrary code, this one cannot). Strided views of a storage
(transposes, slices, offsets) are rebuilt as copies.

`state_dict` finds the tensors of a model in what a training framework
saved: a bare state dict, or one under the keys ``params`` (basicsr, as
NAFNet's released checkpoints: ``{"params": ...}``), ``params_ema``,
``state_dict``, ``model`` or ``net``; a DataParallel ``module.`` prefix is removed.
"""

from __future__ import annotations

import collections
import pickle
import sys
import zipfile
from pathlib import Path
from typing import Any, Mapping

import ml_dtypes
import numpy as np

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
WRAPPER_KEYS = ("params", "params_ema", "state_dict", "model", "net")


class _StorageType:
    """What the pickle's ``torch.<X>Storage`` global resolves to: just its dtype."""

    def __init__(self, name: str):
        self.name, self.dtype = name, np.dtype(_STORAGE_DTYPES[name])


def _rebuild_tensor(storage: np.ndarray, offset: int, size, stride, *_ignored) -> np.ndarray:
    """torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, hooks[, metadata])."""
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride) or min(size, default=1) < 0 or min(stride, default=0) < 0:
        raise ValueError(f"bad tensor layout: size {size}, stride {stride}")
    end = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1 if all(size) else offset
    if offset < 0 or end > storage.size:
        raise ValueError(f"tensor of size {size} at offset {offset} overruns its storage of {storage.size} elements")
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=size, strides=tuple(s * item for s in stride),
                                           writeable=False)
    return np.array(view)


def _rebuild_parameter(data: np.ndarray, *_ignored) -> np.ndarray:
    """torch._utils._rebuild_parameter(data, requires_grad, hooks[, state]): the data."""
    return data


_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in _STORAGE_DTYPES},
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, archive: zipfile.ZipFile, prefix: str, byteorder: str):
        super().__init__(file)
        self._archive, self._prefix, self._byteorder = archive, prefix, byteorder
        self._storages: dict[str, np.ndarray] = {}

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _GLOBALS[(module, name)]
        except KeyError:
            raise ValueError(f"it refers to {module}.{name}, which a plain state dict of tensors does not hold "
                             "(only tensors, numbers, strings and dicts are read)") from None

    def persistent_load(self, pid) -> np.ndarray:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise ValueError(f"unknown persistent reference {pid!r:.80}")
        storage_type, key, numel = pid[1], str(pid[2]), int(pid[4])
        if key not in self._storages:
            try:
                raw = self._archive.read(f"{self._prefix}data/{key}")
            except KeyError:
                raise ValueError(f"storage {key} is missing from the archive") from None
            dtype = storage_type.dtype
            if len(raw) < numel * dtype.itemsize:
                raise ValueError(f"storage {key} holds {len(raw)} bytes, {numel * dtype.itemsize} expected")
            array = np.frombuffer(raw, dtype=dtype, count=numel)
            self._storages[key] = array if self._byteorder == sys.byteorder else array.byteswap()
        return self._storages[key]


def read_pth(path: str | Path) -> Any:
    """The object `torch.save` wrote to `path`, tensors as NumPy arrays (bfloat16 as ml_dtypes.bfloat16).

    Raises:
      FileNotFoundError: no such file.
      ValueError: not a zip-format torch file (one line saying why), or a pickle
        naming anything but tensors, storages and OrderedDict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        with path.open("rb") as f:
            head = f.read(2)
        hint = ""
        if head == b"PK":
            hint = " (a truncated or corrupt zip archive)"
        elif head[:1] == b"\x80":
            hint = " (PyTorch's legacy pre-1.6 format? re-save it with a recent torch: torch.save(torch.load(f), f))"
        raise ValueError(f"{path} is not a PyTorch checkpoint in zip format{hint}")
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("data.pkl") and n.count("/") == 1]
            if len(pickles) != 1:
                raise ValueError("no <name>/data.pkl entry in the zip archive")
            prefix = pickles[0][: -len("data.pkl")]
            byteorder = "little"
            if f"{prefix}byteorder" in archive.namelist():
                byteorder = archive.read(f"{prefix}byteorder").decode().strip()
            if byteorder not in ("little", "big"):
                raise ValueError(f"unknown byte order {byteorder!r}")
            with archive.open(pickles[0]) as f:
                return _RestrictedUnpickler(f, archive, prefix, byteorder).load()
    except ValueError as error:
        raise ValueError(f"cannot read {path} as a PyTorch checkpoint: {error}") from None
    except (zipfile.BadZipFile, pickle.UnpicklingError, EOFError, TypeError, AttributeError, IndexError,
            KeyError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read {path} as a PyTorch checkpoint: corrupt file "
                         f"({type(error).__name__}: {error})") from None


def _is_tensor_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(
        isinstance(k, str) and isinstance(v, np.ndarray) for k, v in obj.items())


def state_dict(obj: Any, *, key: str | None = None) -> dict[str, np.ndarray]:
    """The {name: array} state dict inside a checkpoint object (as `read_pth` returns it).

    Args:
      obj: a state dict, or a dict holding one under `key` (default: the
        first of WRAPPER_KEYS present, e.g. basicsr's "params").
      key: the wrapper key to use; None: find it.

    Raises:
      ValueError: no state dict of tensors found (names the keys seen).
    """
    found = obj
    if key is not None:
        if not isinstance(obj, Mapping) or key not in obj:
            keys = list(obj)[:8] if isinstance(obj, Mapping) else type(obj).__name__
            raise ValueError(f"the checkpoint has no key {key!r} (it has {keys})")
        found = obj[key]
    elif not _is_tensor_dict(obj) and isinstance(obj, Mapping):
        for wrapper in WRAPPER_KEYS:
            if _is_tensor_dict(obj.get(wrapper)):
                found = obj[wrapper]
                break
    if not _is_tensor_dict(found):
        keys = list(obj)[:8] if isinstance(obj, Mapping) else type(obj).__name__
        raise ValueError(f"the checkpoint holds no state dict of tensors (top level: {keys}; looked under "
                         f"{list(WRAPPER_KEYS) if key is None else [key]})")
    return {name.removeprefix("module."): value for name, value in found.items()}


def read_state_dict(path: str | Path, *, key: str | None = None) -> dict[str, np.ndarray]:
    """`state_dict(read_pth(path), key=key)`; a ValueError names the file."""
    try:
        return state_dict(read_pth(path), key=key)
    except ValueError as error:
        message = str(error)
        raise ValueError(message if str(path) in message else f"{path}: {message}") from None
