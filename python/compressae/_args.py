"""Checks of integer, choice and path arguments shared by the public modules (no library calls)."""

from __future__ import annotations

import operator
import os

from .errors import InvalidArgumentError

#: Largest value of the C ABI's ``int64_t`` parameters. ctypes wraps larger
#: Python ints silently (2**64 + 8 becomes 8), so every integer bound for the
#: library is checked against it here.
INT64_MAX = 2**63 - 1


def _size(value, name: str, minimum: int = 1, maximum: int = INT64_MAX) -> int:
    """An integer argument in ``[minimum, maximum]`` (bools and floats are refused)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got a bool")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}") from None
    if value < minimum:
        raise InvalidArgumentError(f"{name} must be >= {minimum}, got {value}")
    if value > maximum:
        raise InvalidArgumentError(f"{name} must be <= {maximum}, got {value}")
    return value


def _choice(value, choices: dict, name: str) -> int:
    """The library's enum value of a string argument that must be one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        options = " or ".join(repr(c) for c in choices)
        raise InvalidArgumentError(f"{name} must be {options}, got {value!r}")
    return choices[value]


def _path(path, name: str = "path") -> bytes:
    """A ``str``, ``bytes`` or ``os.PathLike`` path as the bytes the C library takes.

    The library receives a NUL-terminated string: a path with an embedded NUL
    would silently name another (shorter) file, so it is refused, as
    ``open()`` does.
    """
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(
            f"{name} must be a str, bytes or os.PathLike, got {type(path).__name__}") from None
    encoded = os.fsencode(path)
    if b"\0" in encoded:
        raise InvalidArgumentError(f"{name} contains a NUL byte: {path!r}")
    if not encoded:
        raise InvalidArgumentError(f"{name} is empty")
    return encoded
