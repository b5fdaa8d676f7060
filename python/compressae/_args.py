"""Checks of integer and choice arguments shared by the public modules (no library calls)."""

from __future__ import annotations

import operator

from .errors import InvalidArgumentError


def _size(value, name: str, minimum: int = 1) -> int:
    """An integer argument >= minimum (bools and floats are refused)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got a bool")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}") from None
    if value < minimum:
        raise InvalidArgumentError(f"{name} must be >= {minimum}, got {value}")
    return value


def _choice(value, choices: dict, name: str) -> int:
    """The library's enum value of a string argument that must be one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        options = " or ".join(repr(c) for c in choices)
        raise InvalidArgumentError(f"{name} must be {options}, got {value!r}")
    return choices[value]
