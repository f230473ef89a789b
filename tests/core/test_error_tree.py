"""errors.py's docstring draws the error tree: it must match the classes."""

from __future__ import annotations

import inspect
import re

from cosmos_tui import errors


def drawn_tree() -> dict[str, str]:
    """Each class in the docstring's drawing with the parent it is drawn under."""
    doc = errors.__doc__ or ""
    lines = [line for line in doc.splitlines() if re.search(r"\w+Error|\w+$", line)]
    start = next(i for i, line in enumerate(lines) if line.strip() == "CosmosError")
    parents: dict[str, str] = {}
    drawn: list[str] = []
    stack: list[tuple[int, str]] = [(-1, "CosmosError")]
    for line in lines[start + 1 :]:
        match = re.match(r"^(\s*(?:\|\s+|\s+)*)\+-- (\w+)\s*$", line)
        if match is None:
            break
        depth = len(match.group(1))
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[match.group(2)] = stack[-1][1]
        drawn.append(match.group(2))
        stack.append((depth, match.group(2)))
    assert len(drawn) == len(set(drawn)), f"drawn twice: {drawn}"
    return parents


def test_every_error_class_is_drawn_under_its_real_parent() -> None:
    real = {
        name: cls.__bases__[0].__name__
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.CosmosError) and cls is not errors.CosmosError
    }
    assert drawn_tree() == real
