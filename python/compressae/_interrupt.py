"""Ctrl-C during long library calls.

Python runs its SIGINT handler (which raises ``KeyboardInterrupt``) only
between bytecodes of the main thread. During a long C call that never
happens; during a ctypes callback it may happen at the callback's first
bytecode, outside any ``try``, where ctypes can only print "Exception
ignored" and carry on. So, while a long operation runs on the main thread,
:class:`InterruptGuard` replaces the handler by one that only records the
signal; the operation polls :meth:`InterruptGuard.check` at its safe points
(between chunks of rows, in fit's progress callback) and stops there, and
the recorded exception is raised once the library is out of the way.
"""

from __future__ import annotations

import signal
import threading


class InterruptGuard:
    """Records SIGINT while active instead of raising at an arbitrary point.

    Use as a context manager around an operation; poll :attr:`pending` (or
    call :meth:`check`) at safe points. On exit the previous handler is
    restored and a recorded interrupt is raised (unless another exception
    is already propagating), but only if the handler is still this guard's:
    one installed meanwhile by someone else is left in place. Re-entrant: a
    guard opened inside another shares the outer one's record. Off the main thread (where Python never
    runs signal handlers) and when SIGINT is not handled by Python, the
    guard does nothing.
    """

    __slots__ = ("_previous", "_installed", "_outer", "error")

    def __init__(self):
        self._previous = None
        self._installed = False
        self._outer = None
        #: The exception to raise at the next safe point, or None.
        self.error = None

    def __enter__(self) -> "InterruptGuard":
        if threading.current_thread() is not threading.main_thread():
            return self
        try:
            current = signal.getsignal(signal.SIGINT)
        except (ValueError, AttributeError):  # pragma: no cover - no signals
            return self
        outer = getattr(current, "__self__", None)
        if isinstance(outer, InterruptGuard):
            self._outer = outer
            return self
        if not callable(current):
            # SIG_IGN, SIG_DFL or a handler installed outside Python: not ours to replace.
            return self
        self._previous = current
        signal.signal(signal.SIGINT, self._record)
        self._installed = True
        return self

    def _record(self, signum, frame) -> None:
        previous = self._previous
        if previous is signal.default_int_handler:
            self.error = self.error or KeyboardInterrupt()
            return
        # A handler of the application's: run it now, keep what it raises for
        # the safe point (a handler that only logs lets the operation go on).
        try:
            previous(signum, frame)
        except BaseException as exc:
            self.error = self.error or exc

    @property
    def pending(self) -> bool:
        """True when an interrupt was recorded and not yet raised."""
        guard = self._outer or self
        return guard.error is not None

    def check(self) -> None:
        """Raise the recorded interrupt, if any."""
        guard = self._outer or self
        error, guard.error = guard.error, None
        if error is not None:
            raise error

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._installed:
            self._installed = False
            # Only our own handler is put back: one that the application
            # installed meanwhile stays (and so does a guard's that is not ours).
            try:
                if signal.getsignal(signal.SIGINT) == self._record:
                    signal.signal(signal.SIGINT, self._previous)
            except ValueError:  # pragma: no cover - left on another thread
                pass
        if self._outer is None and exc_type is None:
            self.check()
