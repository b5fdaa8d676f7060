"""Ownership of C handles and translation of C status codes.

A :class:`ModelHandle` owns one ``csae_model *``, an :class:`IndexHandle` one
``csae_index *``; each frees its pointer exactly once. Calls go through
:meth:`ModelHandle.call` (:meth:`IndexHandle.call`), which keeps the handle
alive for the duration of the C call: closing a model while another thread
is inside ``encode`` (an index while another thread is inside ``search``)
defers the free until that call returns, instead of freeing memory under its
feet.
"""

from __future__ import annotations

import threading

from . import _ffi
from .errors import Error, InvalidHandleError, error_for_status


def check(status: int, message: str | None = None) -> None:
    """Raise the :class:`~compressae.Error` matching a non-zero C status.

    Parameters
    ----------
    status : int
        Value returned by a ``csae_`` function.
    message : str, optional
        The error message, if already fetched. Otherwise it is read from
        ``csae_last_error()``, which is per thread: call ``check`` on the
        thread that made the failing call, before any other library call.
    """
    if status == _ffi.CSAE_OK:
        return
    if message is None:
        message = _ffi.last_error()
    raise error_for_status(status, message)


class _Handle:
    """Owner of one C handle (shared logic of the handle kinds below).

    Parameters
    ----------
    pointer : int
        The pointer returned by a ``csae_*_create`` / ``load`` call.
        Ownership passes to this object.
    """

    #: What the handle refers to, for messages ("model", "index").
    _what = "handle"

    @staticmethod
    def _free(pointer: int) -> None:  # overridden by every subclass
        raise NotImplementedError

    def __init__(self, pointer: int):
        if not pointer:
            raise Error(f"internal error: the library returned a NULL {self._what} handle")
        self._pointer = pointer
        self._users = 0
        self._closing = False
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closing

    def _acquire(self) -> int:
        with self._lock:
            if self._closing:
                raise InvalidHandleError(
                    f"the {self._what} is closed", _ffi.CSAE_ERR_INVALID_HANDLE
                )
            self._users += 1
            return self._pointer

    def _release(self) -> None:
        with self._lock:
            self._users -= 1
            pointer = self._take_if_done()
        if pointer:
            self._free(pointer)

    def _take_if_done(self) -> int | None:
        # Called with the lock held: hand the pointer out exactly once, when
        # the handle is closing and no call is in flight any more.
        if self._closing and self._users == 0 and self._pointer:
            pointer, self._pointer = self._pointer, None
            return pointer
        return None

    def call(self, fn, *args, raise_on_error: bool = True) -> tuple[int, str]:
        """Call ``fn(handle, *args)`` and translate its status.

        Returns
        -------
        (status, message) : tuple of int and str
            The C status and, when it is non-zero, the library's message
            (read right after the call, on this thread).

        Raises
        ------
        compressae.Error
            When the status is non-zero and ``raise_on_error`` is true, or
            when the handle is closed.
        """
        pointer = self._acquire()
        try:
            status = fn(pointer, *args)
            message = _ffi.last_error() if status != _ffi.CSAE_OK else ""
        finally:
            self._release()
        if raise_on_error:
            check(status, message)
        return status, message

    def close(self) -> None:
        """Free the C object (now, or when the last in-flight call returns).

        Safe to call several times and from several threads.
        """
        with self._lock:
            self._closing = True
            pointer = self._take_if_done()
        if pointer:
            self._free(pointer)

    def __enter__(self) -> "_Handle":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __del__(self) -> None:
        # Never raise from a finaliser; at interpreter exit the lock or the
        # library may already be gone, and leaking is then harmless.
        try:
            self.close()
        except Exception:
            pass


class ModelHandle(_Handle):
    """Owner of one C model handle (``csae_model *``)."""

    _what = "model"
    # Held on the class so that __del__ still finds it while the interpreter
    # shuts down and module globals are being cleared.
    _free = staticmethod(_ffi.csae_model_free)


class IndexHandle(_Handle):
    """Owner of one C index handle (``csae_index *``).

    The C index keeps its model alive by itself, so an index handle stays
    usable after the model handle it was built from is closed.
    """

    _what = "index"
    _free = staticmethod(_ffi.csae_index_free)
