"""Number options that say their allowed range when the value is not usable."""

from __future__ import annotations

import math
from typing import Any

import click


def _figure(value: float) -> str:
    """Write a bound as people type it: 1000000, not 1e+06; 0.5 stays 0.5."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


# Commands whose arguments may be negative numbers: "-1" is a value, not an option.
NEGATIVE_ARGS: dict[str, bool] = {"ignore_unknown_options": True}


class Number(click.ParamType[int | float]):
    """An int or float option whose errors name the allowed range.

    ``--priority 1e20`` or ``--steps 2^63`` is a usage error (exit 2) that says which
    numbers are accepted, never a traceback. With ``enforce`` the range is checked here
    too; without it the value is only parsed (and must be finite), and the services
    check the range with the same figures (so the TUI's forms say the same).
    """

    def __init__(
        self, kind: type[int] | type[float], low: float, high: float, enforce: bool = True
    ) -> None:
        self.kind = kind
        self.low = low
        self.high = high
        self.enforce = enforce
        self.name = "integer" if kind is int else "number"

    def _range(self) -> str:
        return f"from {_figure(self.low)} to {_figure(self.high)}"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Parse ``value``; fail with the allowed range when it is not usable."""
        if isinstance(value, self.kind) and not isinstance(value, bool):
            number = value
        else:
            what = "a whole number" if self.kind is int else "a number"
            try:
                number = self.kind(str(value).strip())
            except (ValueError, OverflowError):
                self.fail(f"{value!r} is not {what}; give one {self._range()}", param, ctx)
        if isinstance(number, float) and not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number; give one {self._range()}", param, ctx)
        if self.enforce and not self.low <= number <= self.high:
            self.fail(f"{value} is out of range; give a number {self._range()}", param, ctx)
        return number

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        """Show the type in --help (the range is in the option's help text)."""
        return "INTEGER" if self.kind is int else "NUMBER"
