"""Small builders for the server-manager XML the property decorators take, and property domains.

A domain object is both the XML that bounds a property's widget in the GUI and the check its
setter makes: a script, a state file or a client can set any value, the XML stops none of them.
One object per property owns its allowed values, so the two cannot drift apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Any, Protocol, Sequence


class Domain(Protocol):
    """What the setters need of a domain (see base._Reporting._checked)."""

    name: str  # the property's name, as scripts set it

    def xml(self) -> str: ...

    def accept(self, value: Any) -> Any:
        """``value`` as the setter stores it, or None when it is not allowed."""

    def allowed(self) -> str:
        """What is allowed, for the message: "an integer from 1 to 16"."""


def documentation(text: str) -> str:
    return f"<Documentation>{escape(text)}</Documentation>"


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or None (a string, None, NaN, infinity)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class IntRange:
    """Integers from ``low`` to ``high`` (both included)."""

    name: str
    low: int
    high: int

    def xml(self) -> str:
        return f'<IntRangeDomain name="range" min="{self.low}" max="{self.high}"/>'

    def accept(self, value: Any) -> int | None:
        number = _number(value)
        if number is None or not number.is_integer() or not self.low <= number <= self.high:
            return None
        return int(number)

    def allowed(self) -> str:
        return f"an integer from {self.low} to {self.high}"


@dataclass(frozen=True)
class DoubleRange:
    """Finite numbers from ``low`` to ``high`` (both included)."""

    name: str
    low: float
    high: float

    def xml(self) -> str:
        return f'<DoubleRangeDomain name="range" min="{self.low!r}" max="{self.high!r}"/>'

    def accept(self, value: Any) -> float | None:
        number = _number(value)
        return number if number is not None and self.low <= number <= self.high else None

    def allowed(self) -> str:
        return f"a number from {self.low:g} to {self.high:g}"


@dataclass(frozen=True)
class IncreasingPair:
    """Two numbers ``a < b``, both from ``low`` to ``high`` (a range within a range)."""

    name: str
    low: float
    high: float

    def xml(self) -> str:
        return DoubleRange(self.name, self.low, self.high).xml()  # each element; the order is the setter's

    def accept(self, values: Any) -> tuple[float, float] | None:
        try:
            first, second = (_number(v) for v in values)
        except (TypeError, ValueError):
            return None
        if first is None or second is None or not self.low <= first < second <= self.high:
            return None
        return first, second

    def allowed(self) -> str:
        return f"two numbers low < high, both from {self.low:g} to {self.high:g}"


@dataclass(frozen=True)
class Enumeration:
    """The indices 0, 1, ... of ``entries``; the setter stores the entry (the GUI shows its text)."""

    name: str
    entries: Sequence[str]

    def xml(self) -> str:
        items = "".join(f'<Entry value="{i}" text="{escape(entry)}"/>' for i, entry in enumerate(self.entries))
        return f'<EnumerationDomain name="enum">{items}</EnumerationDomain>'

    def accept(self, value: Any) -> str | None:
        index = IntRange(self.name, 0, len(self.entries) - 1).accept(value)
        return None if index is None else self.entries[index]

    def allowed(self) -> str:
        choices = [f"{i} ({entry})" for i, entry in enumerate(self.entries)]
        return f"{', '.join(choices[:-1])} or {choices[-1]}"
