"""Checks of the arguments a config hands to a constructor (data set loaders, tasks, models,
fusion, the feature step).

Hydra passes whatever the user wrote (``task.batch_size=abc`` arrives as the string ``"abc"``),
so a constructor checks its arguments before using them: a value of the wrong kind or out of
range raises a one-line :class:`~mmgraph.errors.ConfigError` that names the key, says what is
expected and what was given, instead of a ``TypeError`` deep inside PyTorch.
"""
from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

from mmgraph.errors import ConfigError

__all__ = ["integer", "number", "boolean", "choice", "integers"]


def _is_int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _bounds(low: Any, high: Any) -> str:
    if low is not None and high is not None:
        return f"in [{low}, {high}]"
    return f">= {low}" if low is not None else f"<= {high}" if high is not None else ""


def _kind(what: str, low: Any, high: Any, optional: bool) -> str:
    bounds = _bounds(low, high)
    return f"{what}{' ' + bounds if bounds else ''}{' or null' if optional else ''}"


def integer(key: str, value: Any, low: int | None = None, high: int | None = None, *,
            optional: bool = False) -> int | None:
    """``value`` as an ``int`` in ``[low, high]`` (``None`` passes when ``optional``)."""
    if value is None and optional:
        return None
    if not _is_int(value):
        raise ConfigError(f"{key} must be {_kind('an integer', low, high, optional)}; got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(f"{key} must be {_bounds(low, high)}; got {value}")
    return int(value)


def number(key: str, value: Any, low: float | None = None, high: float | None = None) -> float:
    """``value`` as a ``float`` in ``[low, high]`` (NaN is out of every range)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ConfigError(f"{key} must be {_kind('a number', low, high, False)}; got {value!r}")
    value = float(value)
    if (low is not None and not low <= value) or (high is not None and not value <= high) or value != value:
        raise ConfigError(f"{key} must be {_bounds(low, high) or 'a number'}; got {value}")
    return value


def boolean(key: str, value: Any) -> bool:
    """``value`` if it is ``True`` or ``False`` (text such as ``"maybe"`` is not)."""
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false; got {value!r}")
    return value


def choice(key: str, value: Any, options: Sequence[str]) -> str:
    """``value`` if it is one of the names ``options``."""
    if not isinstance(value, str) or value not in options:
        raise ConfigError(f"{key} must be one of {', '.join(options)}; got {value!r}")
    return value


def integers(key: str, value: Any, low: int | None = None, *, example: str | None = None) -> list[int]:
    """``value`` as a non-empty list of ``int`` s, each ``>= low``; ``example`` shows a good value."""
    listed = isinstance(value, Sequence) and not isinstance(value, (str, bytes))
    if not listed or not value or not all(_is_int(v) and (low is None or v >= low) for v in value):
        hint = f", e.g. {key}={example}" if example else ""
        raise ConfigError(f"{key} must be a non-empty list of {_kind('integers', low, None, False)}{hint}; "
                          f"got {value!r}")
    return [int(v) for v in value]
