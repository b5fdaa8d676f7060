"""Training on data larger than memory: rows handed to the library a batch at a time.

``CompresSAE.fit`` takes, besides an in-memory array:

- a memory map, or any array-like of any real dtype (NumPy of another dtype
  than float32, PyTorch tensors including bfloat16, DLPack / ``__array__``
  objects): the library asks for the rows of each batch through a callback
  (``csae_model_train_source`` with ``CSAE_SOURCE_ROWS``), and only those are
  converted to float32. Shuffling, the validation split and early stopping
  stay in the library. A memory map is read in blocks of contiguous rows
  (:class:`TrainingRows`'s ``block_rows``, 256 by default) whose pages are
  dropped from the process once copied, so that its resident set stays at a
  batch's size however large the file is;
- an iterable of batches (:class:`TrainingStream`): re-iterable objects and
  callables returning a fresh iterator are read once per epoch, in their
  order (``CSAE_SOURCE_STREAM``); a held-out sample of bounded size is kept
  in memory for the validation loss.

Python exceptions in a callback (a bad batch, a failing read) stop training
at once and are re-raised by ``fit``; Ctrl-C stops it at the next read or
step.
"""

from __future__ import annotations

import ctypes
import mmap

import numpy as np

from . import _ffi
from ._chunks import RowSource, _is_torch, _release_pages, _releasable, _to_numpy
from .errors import InvalidArgumentError

#: Rows the shuffle of a memory map keeps together by default: a batch of
#: 4096 rows is read as 16 runs of 256 contiguous rows (192 KiB each for 384
#: float16 columns) instead of 4096 random pages.
MEMMAP_BLOCK_ROWS = 256

#: Held-out rows a stream keeps in memory by default (24 MiB at 384 columns).
STREAM_VALIDATION_ROWS = 16384


class TrainingRows:
    """Rows read by position for :meth:`CompresSAE.fit`, a batch at a time.

    ``fit(X)`` wraps any array-like that is not a float32 in-memory NumPy
    array in this with the default ``block_rows``; wrap it yourself to choose.

    Parameters
    ----------
    X : array_like, shape (n, input_dim)
        NumPy array or memory map of any real dtype, PyTorch tensor, or an
        object implementing DLPack or ``__array__`` with row slicing.
    block_rows : int, optional
        Rows the shuffle keeps together. The data is cut into blocks of
        ``block_rows`` contiguous rows; whole blocks are held out for
        validation (``validation_fraction`` of the blocks) and shuffled every
        epoch, and the rows are shuffled within each batch. 1 shuffles single
        rows and gives exactly the result of ``fit`` on the same rows as
        float32 in memory. Default: 256 for a memory map (each batch is read
        as a few sequential runs), else 1.
    """

    def __init__(self, X, block_rows: int | None = None):
        self.X = X
        if block_rows is not None and (isinstance(block_rows, bool) or not isinstance(block_rows, (int, np.integer))
                                       or block_rows < 1):
            raise InvalidArgumentError(f"block_rows must be an integer >= 1, got {block_rows!r}")
        self.block_rows = block_rows


class TrainingStream:
    """Batches read in order, one pass per epoch, for :meth:`CompresSAE.fit`.

    Parameters
    ----------
    batches : callable or iterable
        A callable returning a fresh iterator of batches at every call, or a
        re-iterable object (a list, a dataset object whose ``__iter__``
        starts over). A one-shot iterator (a generator) can be read once:
        it serves a single epoch. Each batch is an array-like of shape
        (rows, input_dim), any real dtype, any number of rows.
    max_validation_rows : int, default 16384
        Most rows held out for the validation loss. Held out are the rows at
        positions a seeded hash selects with probability
        ``validation_fraction``, up to this many (the first such positions);
        they are kept in memory from the first pass and skipped in the later
        ones, so every pass must give the same rows in the same order (a
        pass of another length is an error).

    The stream's order is the training order (``shuffle`` has no effect:
    shuffle the stream). The number of steps is known once the first pass
    ends: the progress bar shows no total before, and ``lr_decay`` "cosine"
    and "linear" are refused.
    """

    def __init__(self, batches, max_validation_rows: int = STREAM_VALIDATION_ROWS):
        if not callable(batches) and not hasattr(batches, "__iter__"):
            raise TypeError(f"a stream must be a callable or an iterable of batches, got {type(batches).__name__}")
        if isinstance(max_validation_rows, bool) or not isinstance(max_validation_rows, (int, np.integer)) \
                or not 0 <= max_validation_rows <= 2**31 - 1:
            raise InvalidArgumentError(f"max_validation_rows must be an integer in [0, 2^31), got {max_validation_rows!r}")
        self.batches = batches
        self.max_validation_rows = int(max_validation_rows)


def wants_source(X) -> bool:
    """Whether ``fit`` reads ``X`` through a callback source rather than as
    one float32 array: memory maps, arrays of another dtype, tensors and
    DLPack objects, and streams of batches. Lists and other sequences are
    rows (wrap a list of batches in :class:`TrainingStream`)."""
    if isinstance(X, (TrainingRows, TrainingStream)):
        return True
    if isinstance(X, np.ndarray):
        return isinstance(X, np.memmap) or X.dtype != np.float32
    return _is_array_like(X) or _is_stream(X)


def _is_array_like(X) -> bool:
    return _is_torch(X) or ((hasattr(X, "__dlpack__") or hasattr(X, "__array__")) and hasattr(X, "shape"))


def _is_stream(X) -> bool:
    if isinstance(X, (list, tuple, str, bytes)) or hasattr(X, "__array__") or hasattr(X, "__dlpack__"):
        return False
    return callable(X) or hasattr(X, "__iter__")


def source_for(X, columns: int):
    """The callback source that ``fit`` trains ``X`` from."""
    if isinstance(X, TrainingStream):
        return _StreamSource(X, columns)
    if isinstance(X, TrainingRows):
        return _RowsSource(X.X, columns, X.block_rows)
    if _is_array_like(X):
        return _RowsSource(X, columns, None)
    return _StreamSource(TrainingStream(X), columns)


class _Source:
    """The C struct and the trampoline state shared by both kinds of source."""

    def __init__(self, columns: int):
        self.columns = columns
        #: The exception a callback raised, re-raised by ``fit``.
        self.error = None
        self.guard = None
        self.c_source = _ffi.csae_row_source_defaults()

    def check_epochs(self, epochs: int) -> None:
        """Refuses, before any step, settings this source cannot serve."""

    def _stop(self) -> int | None:
        """A status that stops training now (Ctrl-C pending), else None."""
        if self.guard is not None and self.guard.pending:
            return _ffi.CSAE_ERR_CANCELLED
        return None

    def _fail(self, exc: BaseException) -> int:
        self.error = self.error or exc
        return _ffi.CSAE_ERR_IO


class _RowsSource(_Source):
    """``CSAE_SOURCE_ROWS`` over an array-like."""

    def __init__(self, X, columns: int, block_rows: int | None):
        super().__init__(columns)
        source = RowSource(X, columns, name="X", allow_1d=False)
        if source.rows == 0:
            raise InvalidArgumentError("fit needs at least one row")
        self.rows = source.rows
        self._source = source
        self._array = source._array  # None for a lazily converted object (PyTorch, DLPack)
        self._lazy = source._lazy
        self._release = self._array is not None and _releasable(self._array)
        if block_rows is None:
            block_rows = MEMMAP_BLOCK_ROWS if isinstance(X, np.memmap) else 1
        self.block_rows = int(min(block_rows, self.rows))
        self.c_source.kind = _ffi.CSAE_SOURCE_ROWS
        self.c_source.rows = self.rows
        self.c_source.block_rows = self.block_rows
        # The CFUNCTYPE object must outlive the C call: keep it on self.
        self._callback = _ffi.csae_read_rows_fn(self._read)
        self.c_source.read_rows = self._callback

    def _read(self, user_data, ranges, n_ranges, out) -> int:
        stop = self._stop()
        if stop is not None:
            return stop
        try:
            spans = np.ctypeslib.as_array(ctypes.cast(ranges, ctypes.POINTER(ctypes.c_int64)), shape=(n_ranges, 2))
            rows = int(spans[:, 1].sum())
            target = np.ctypeslib.as_array(out, shape=(rows, self.columns))
            self._copy(spans, target)
            return 0
        except BaseException as exc:  # including KeyboardInterrupt: never unwind through the library
            return self._fail(exc)

    def _copy(self, spans: np.ndarray, target: np.ndarray) -> None:
        array = self._array
        if array is not None and len(spans) > 1 and (spans[:, 1] == 1).all():
            # Single rows (block_rows 1): one gather and one conversion.
            target[...] = array[spans[:, 0]]
        elif self._lazy is not None and len(spans) > 1 and (spans[:, 1] == 1).all() and _is_torch(self._lazy):
            import torch

            part = _to_numpy(self._lazy[torch.from_numpy(spans[:, 0].copy())])
            target[...] = part
        else:
            position = 0
            for start, count in spans:
                start, count = int(start), int(count)
                if array is not None:
                    target[position:position + count] = array[start:start + count]
                else:
                    target[position:position + count] = self._source.chunk(start, start + count)
                position += count
        if self._release:
            self._drop_pages(spans)

    def _drop_pages(self, spans: np.ndarray) -> None:
        # The pages of the rows just copied leave the resident set (the data
        # stay in the file and the page cache). Pages shared with a
        # neighbouring block are dropped too: a later read maps them again.
        array = self._array
        base, row_bytes, page = array.ctypes.data, array.strides[0], mmap.PAGESIZE
        end = base + array.shape[0] * row_bytes
        for start, count in spans:
            first = (base + int(start) * row_bytes) // page * page
            last = min(-(-(base + (int(start) + int(count)) * row_bytes) // page) * page,
                       -(-end // page) * page)
            _release_pages(0, max(first, base // page * page), last)


class _StreamSource(_Source):
    """``CSAE_SOURCE_STREAM`` over a :class:`TrainingStream`."""

    def __init__(self, stream: TrainingStream, columns: int):
        super().__init__(columns)
        self._batches = stream.batches
        self._iterator = None
        self._passes = 0
        self._current = None      # RowSource of the batch being read
        self._offset = 0          # rows of it already handed out
        self.c_source.kind = _ffi.CSAE_SOURCE_STREAM
        self.c_source.max_validation_rows = stream.max_validation_rows
        self._callback = _ffi.csae_read_stream_fn(self._read)
        self.c_source.read_stream = self._callback

    def check_epochs(self, epochs: int) -> None:
        # An iterator (it has __next__) can be read once; asking iter() of a
        # re-iterable here would start a pass it does not expect.
        batches = self._batches
        if epochs > 1 and not callable(batches) and hasattr(batches, "__next__"):
            raise InvalidArgumentError(
                f"an iterator of batches can be read once, and training needs one pass per epoch (epochs = {epochs}): "
                "pass a callable that returns a fresh iterator, a re-iterable object, or epochs=1")

    def _new_pass(self) -> None:
        self._passes += 1
        batches = self._batches
        if callable(batches):
            iterator = iter(batches())
        else:
            iterator = iter(batches)
            if iterator is batches and self._passes > 1:
                raise InvalidArgumentError(
                    "an iterator of batches can be read once, and training needs one pass per epoch: "
                    "pass a callable that returns a fresh iterator, or a re-iterable object")
        self._iterator = iterator
        self._current = None
        self._offset = 0

    def _read(self, user_data, position, count, out, rows_read) -> int:
        stop = self._stop()
        if stop is not None:
            return stop
        try:
            if position == 0:
                self._new_pass()
            target = np.ctypeslib.as_array(out, shape=(count, self.columns))
            filled = 0
            while filled < count:
                if self._current is None or self._offset == self._current.rows:
                    batch = next(self._iterator, None)
                    if batch is None:
                        break
                    self._current = RowSource(batch, self.columns, name="a batch", allow_1d=False)
                    self._offset = 0
                    continue
                take = min(count - filled, self._current.rows - self._offset)
                target[filled:filled + take] = self._current.chunk(self._offset, self._offset + take)
                self._offset += take
                filled += take
            rows_read[0] = filled
            return 0
        except BaseException as exc:
            return self._fail(exc)
