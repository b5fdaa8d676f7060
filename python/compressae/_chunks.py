"""Reading inputs and writing outputs a chunk of rows at a time.

Long operations (``encode``, ``SparseIndex.add``/``search``) run as a series
of library calls on chunks of rows, so that

- an input is converted to float32 one chunk at a time: a float16 memmap of
  10M rows is never copied whole, nor is a PyTorch bfloat16 / CUDA tensor;
- Ctrl-C is honoured between chunks (see ``_interrupt``);
- progress can be reported.

:class:`RowSource` wraps any 2-D array-like (NumPy arrays and memmaps,
PyTorch tensors, objects implementing ``__array__`` or DLPack) and hands out
float32 C-contiguous chunks. The library's results are per row (codes, adds)
or per query (searches), so chunking changes no result.
"""

from __future__ import annotations

import ctypes
import math
import mmap
import re
import sys

import numpy as np

from .errors import InvalidArgumentError, OutOfMemoryError

#: Multiply-adds one chunk may cost per worker thread. At about 3 G
#: multiply-adds per second and core (the built-in GEMM, no BLAS) a chunk
#: takes a third of a second; with a BLAS, less.
CHUNK_WORK = 2**30

#: Rows of one encoder GEMM in the library: chunks are multiples of it when
#: they can be, so the library splits a chunk exactly as it splits one call.
ENCODER_CHUNK_ROWS = 512

#: Most rows of one chunk per worker (bounds the float32 copy of a chunk
#: when the model is tiny).
MAX_CHUNK_ROWS = 65536


def empty(shape: tuple, dtype, what: str) -> np.ndarray:
    """``np.empty`` whose failure is an :class:`OutOfMemoryError` naming ``what``.

    NumPy reports an allocation that is too large either as ``MemoryError`` or,
    when the byte count overflows, as ``ValueError``; both mean the same to the
    caller: the requested output does not fit.
    """
    try:
        return np.empty(shape, dtype=dtype)
    except (MemoryError, ValueError) as exc:
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        raise OutOfMemoryError(
            f"cannot allocate {what}: shape {tuple(shape)}, {_human(nbytes)} ({exc})") from None


def _human(nbytes: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return ""  # unreachable


def encode_chunk_rows(d: int, h: int, k: int, refit: bool, workers: int) -> int:
    """Rows per chunk for encoding with a model of shape (d, h) at ``k``.

    Per row the encoder costs ``d h`` multiply-adds (the GEMM) plus ``h`` for
    the top-k selection, and a refit ``k^2 d``. A chunk gets about
    :data:`CHUNK_WORK` per worker, rounded down to whole encoder GEMMs when
    that leaves at least one (up to twice the work, so that the library
    splits each chunk exactly as it would split one call over all rows).
    """
    per_row = (d + 8) * h + (k * k * d if refit else 0)
    rows = CHUNK_WORK // per_row
    if rows >= ENCODER_CHUNK_ROWS // 2:
        rows = max(ENCODER_CHUNK_ROWS, rows - rows % ENCODER_CHUNK_ROWS)
    return max(1, min(rows, MAX_CHUNK_ROWS)) * max(1, workers)


def _is_torch(obj) -> bool:
    return type(obj).__module__.split(".")[0] == "torch" and hasattr(obj, "detach")


def _torch_to_numpy(tensor) -> np.ndarray:
    # One conversion per chunk: detach from autograd, move to the CPU and
    # widen to float32 (bfloat16 has no NumPy type) in a single ``to``.
    import torch

    if tensor.is_complex():
        raise InvalidArgumentError(f"the input must be real, got dtype {tensor.dtype}")
    if tensor.dtype != torch.float32 or tensor.device.type != "cpu":
        tensor = tensor.detach().to(device="cpu", dtype=torch.float32)
    return tensor.numpy(force=True)


def _to_numpy(obj) -> np.ndarray:
    """A NumPy view (or, failing that, copy) of one array-like chunk."""
    if isinstance(obj, np.ndarray):
        return obj
    if _is_torch(obj):
        return _torch_to_numpy(obj)
    if hasattr(obj, "__dlpack__"):
        try:
            return np.from_dlpack(obj)
        except (BufferError, TypeError, ValueError, RuntimeError):
            pass
        try:  # another device: ask the producer for a CPU copy (DLPack 1.0)
            return np.from_dlpack(obj, device="cpu", copy=True)
        except (BufferError, TypeError, ValueError, RuntimeError, AttributeError):
            pass
    return np.asarray(obj)


def _check_dtype(dtype, name: str) -> None:
    kind = getattr(dtype, "kind", None)
    if kind == "c":
        raise InvalidArgumentError(f"{name} must be real, got dtype {dtype}")
    if kind not in ("f", "i", "u", "b"):
        raise InvalidArgumentError(f"{name} must be numeric, got dtype {dtype}")


def _releasable(array) -> bool:
    # Only shared file mappings: on a private (copy-on-write, mode "c")
    # mapping MADV_DONTNEED would throw away the caller's modifications.
    return (sys.platform.startswith("linux") and isinstance(array, np.memmap)
            and getattr(array, "mode", None) in ("r", "r+", "w+")
            and array.flags.c_contiguous and array.size > 0)


_madvise = None


def _release_pages(address: int, start: int, stop: int) -> None:
    """Drop the whole pages of bytes [address + start, address + stop) from
    this process's resident set (MADV_DONTNEED on a shared file mapping: the
    data stay in the file and the page cache; a later access maps them again)."""
    global _madvise
    if _madvise is None:
        libc = ctypes.CDLL(None, use_errno=True)
        _madvise = libc.madvise
        _madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        _madvise.restype = ctypes.c_int
    page = mmap.PAGESIZE
    first = -(-(address + start) // page) * page
    last = (address + stop) // page * page
    if last > first:
        _madvise(first, last - first, mmap.MADV_DONTNEED)


class _PageReleaser:
    """Releases the pages of a memmap's rows once a chunk is done with them,
    so that streaming a file larger than memory keeps the resident set at a
    chunk's size (the pages would otherwise stay mapped until the end)."""

    __slots__ = ("_address", "_row_bytes", "_done")

    def __init__(self, array: np.ndarray):
        self._address = array.ctypes.data
        self._row_bytes = array.strides[0] if array.ndim > 1 else array.itemsize
        self._done = 0

    def release(self, stop_row: int) -> None:
        stop = stop_row * self._row_bytes
        if stop > self._done:
            _release_pages(self._address, self._done, stop)
            # The partial page at the end is released with the next chunk.
            self._done = stop // mmap.PAGESIZE * mmap.PAGESIZE


class RowSource:
    """Float32 chunks of a 2-D array-like of ``columns`` columns.

    Parameters
    ----------
    X : array_like
        NumPy array or memmap (any real dtype, any layout), PyTorch tensor
        (any real dtype including bfloat16, requiring grad or not, on any
        device), an object implementing DLPack or ``__array__`` and row
        slicing (sliced and converted one chunk at a time), or anything
        ``np.asarray`` takes. A 1-D input is one row when ``allow_1d``.
    """

    def __init__(self, X, columns: int, name: str = "X", allow_1d: bool = True):
        self.name = name
        self._lazy = None
        self._array = None
        if isinstance(X, np.ndarray):
            array = X
        elif _is_torch(X) or ((hasattr(X, "__dlpack__") or hasattr(X, "__array__"))
                              and hasattr(X, "shape") and hasattr(X, "__getitem__")
                              and len(X.shape) == 2):
            array = None
            if not _is_torch(X) and hasattr(X, "__dlpack__"):
                try:  # a CPU array NumPy can view: no conversion needed at all
                    array = np.from_dlpack(X)
                except (BufferError, TypeError, ValueError, RuntimeError):
                    array = None
            if array is None:
                self._lazy = X
        else:
            array = np.asarray(X)
        shape = tuple(int(s) for s in (array.shape if array is not None else X.shape))
        if array is not None:
            _check_dtype(array.dtype, name)
        elif _is_torch(X) and X.is_complex():
            raise InvalidArgumentError(f"{name} must be real, got dtype {X.dtype}")
        if len(shape) == 1 and allow_1d:
            shape = (1, shape[0])
            if array is not None:
                array = array.reshape(1, -1)
            else:
                self._lazy = X.reshape(1, -1)
        if len(shape) != 2:
            raise InvalidArgumentError(
                f"{name} must be a 2-D array [n, {columns}], got shape {shape}")
        if shape[1] != columns:
            raise InvalidArgumentError(
                f"{name} has {shape[1]} columns but the model's input_dim is {columns}")
        self._array = array
        self.rows = shape[0]
        self._releaser = _PageReleaser(array) if array is not None and _releasable(array) else None

    def chunk(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` as a float32 C-contiguous array (a view when
        the input already is one, else a copy of these rows only)."""
        if self._array is not None:
            part = self._array[start:stop]
        else:
            part = _to_numpy(self._lazy[start:stop])
            _check_dtype(part.dtype, self.name)
            if part.ndim != 2 or part.shape[0] != stop - start:
                raise InvalidArgumentError(
                    f"{self.name}[{start}:{stop}] gave an array of shape {part.shape}")
        return np.ascontiguousarray(part, dtype=np.float32)

    def done(self, stop: int) -> None:
        """The rows before ``stop`` are no longer needed (memmap pages may go)."""
        if self._releaser is not None:
            self._releaser.release(stop)

    def whole(self) -> np.ndarray:
        """All rows as one float32 C-contiguous array (for ``fit``)."""
        return self.chunk(0, self.rows)


class OutputRows:
    """Destination arrays written a chunk of rows at a time.

    ``arrays`` are ``(array, dtype)`` pairs of shape ``(rows, cols)``. A chunk
    is written in place when its rows are contiguous in the destination, else
    through a temporary array.
    """

    def __init__(self, arrays: list):
        self._arrays = arrays
        self._releasers = [_PageReleaser(a) if _releasable(a) else None for a in arrays]

    def views(self, start: int, stop: int) -> list:
        """Arrays for rows ``[start, stop)`` to pass to the library."""
        parts = []
        for array in self._arrays:
            part = array[start:stop]
            if not (part.flags.c_contiguous and part.flags.aligned):
                part = np.empty(part.shape, dtype=array.dtype)
            parts.append(part)
        return parts

    def commit(self, start: int, stop: int, parts: list) -> None:
        """Rows ``[start, stop)`` were written into ``parts`` (from :meth:`views`)."""
        for array, part, releaser in zip(self._arrays, parts, self._releasers):
            if part.base is None:  # a temporary: copy it into place
                array[start:stop] = part
            if releaser is not None:
                releaser.release(stop)


def check_output(array, shape: tuple, dtype, name: str) -> np.ndarray:
    """A caller's output array: a writable NumPy array of exactly ``shape`` and ``dtype``."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array (or memmap), got {type(array).__name__}")
    if array.dtype != dtype:
        raise InvalidArgumentError(f"{name} must have dtype {np.dtype(dtype)}, got {array.dtype}")
    if array.shape != tuple(shape):
        raise InvalidArgumentError(f"{name} must have shape {tuple(shape)}, got {array.shape}")
    if not array.flags.writeable:
        raise InvalidArgumentError(f"{name} is read-only")
    return array


_ROW = re.compile(r"\brow (\d+)")


def offset_rows(error: InvalidArgumentError, offset: int) -> InvalidArgumentError:
    """The library's error about a chunk, with its row number counted from the
    start of the whole input instead of the chunk."""
    if offset == 0:
        return error
    message = _ROW.sub(lambda m: f"row {int(m.group(1)) + offset}", str(error), count=1)
    return type(error)(message, error.status)
