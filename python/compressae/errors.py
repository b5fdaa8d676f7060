"""Exceptions raised by compressae.

Every failure reported by the C library becomes a :class:`Error` (or one of
its subclasses) carrying the library's status code in ``.status`` and its
message (``csae_last_error()``) as the exception text. Invalid arguments are
also :class:`ValueError`, so code that already catches ``ValueError`` for bad
input keeps working.
"""

from __future__ import annotations

from . import _ffi


class Error(RuntimeError):
    """A failure reported by the compressae library.

    Attributes
    ----------
    status : int
        The C status code (one of the ``CSAE_ERR_*`` constants in
        ``compressae._ffi``), or 0 for errors detected in Python before any
        C call.
    """

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


class InvalidArgumentError(Error, ValueError):
    """An argument was refused: bad shape, size, value, NaN/Inf, zero row..."""


class InvalidHandleError(Error):
    """The model was closed (or its handle is otherwise not valid)."""


class FileError(Error):
    """A file could not be opened, read, written or renamed."""


class FormatError(Error):
    """A file is not a valid compressae / safetensors model file."""


class Cancelled(Error):
    """Training was stopped by the progress callback.

    The steps done before the cancellation are kept: the model holds their
    weights and ``history_`` their losses.
    """


class OutOfMemoryError(Error, MemoryError):
    """Memory for the call could not be allocated.

    ``status`` is ``CSAE_ERR_OUT_OF_MEMORY`` when the library failed, 0 when
    an output array sized by the arguments (e.g. ``search`` with a huge
    ``n``) could not be allocated in Python. A ``MemoryError`` raised by a
    progress callable is re-raised as it is.
    """


class BusyError(Error):
    """The model is being trained by another call (another thread)."""


_BY_STATUS = {
    _ffi.CSAE_ERR_INVALID_ARGUMENT: InvalidArgumentError,
    _ffi.CSAE_ERR_INVALID_HANDLE: InvalidHandleError,
    _ffi.CSAE_ERR_IO: FileError,
    _ffi.CSAE_ERR_FORMAT: FormatError,
    _ffi.CSAE_ERR_CANCELLED: Cancelled,
    _ffi.CSAE_ERR_OUT_OF_MEMORY: OutOfMemoryError,
    _ffi.CSAE_ERR_BUSY: BusyError,
}


def error_for_status(status: int, message: str) -> Error:
    """Build the exception matching a C status code (not raised here)."""
    cls = _BY_STATUS.get(status, Error)
    if not message:
        message = f"compressae call failed with {_ffi.STATUS_NAMES.get(status, f'status {status}')}"
    return cls(message, status)
