"""Imports inside functions say why they are there.

A function-level import is kept only for start-up time (``# lazy: ...``) or to break an
import cycle (``# cycle: ...``); everything else goes at the top of its module. Each one
needs a comment on its own line or on the line directly above it. Consecutive imports
(blank lines between them aside, as isort leaves them) share the comment above the first.
Every module of the package is checked.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "cosmos_tui"

FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
IMPORTS = (ast.Import, ast.ImportFrom)


def _comment_lines(source: str) -> set[int]:
    """The line numbers that hold a comment (found by the tokenizer, not by a '#')."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {token.start[0] for token in tokens if token.type == tokenize.COMMENT}


def _function_imports(tree: ast.Module) -> list[tuple[ast.stmt, ast.stmt | None]]:
    """Each import inside a function, with the statement just before it in its block."""
    found: list[tuple[ast.stmt, ast.stmt | None]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        inside = in_function or isinstance(node, FUNCTIONS)
        for _, value in ast.iter_fields(node):
            if not isinstance(value, list):
                continue
            previous: ast.stmt | None = None
            for child in value:
                if isinstance(child, ast.AST):
                    if inside and isinstance(child, IMPORTS):
                        found.append((child, previous))
                    visit(child, inside)
                if isinstance(child, ast.stmt):
                    previous = child

    visit(tree, False)
    return found


def _unexplained(source: str) -> list[int]:
    """The lines of the function-level imports in ``source`` that have no comment."""
    comments = _comment_lines(source)
    explained: set[int] = set()
    missing = []
    for node, previous in _function_imports(ast.parse(source)):
        end = node.end_lineno or node.lineno
        ok = (
            node.lineno - 1 in comments
            or any(line in comments for line in range(node.lineno, end + 1))
            or (isinstance(previous, IMPORTS) and id(previous) in explained)
        )
        if ok:
            explained.add(id(node))
        else:
            missing.append(node.lineno)
    return missing


def test_every_function_level_import_says_why() -> None:
    missing = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line in _unexplained(path.read_text(encoding="utf-8"))
    ]
    assert missing == [], (
        "imports inside functions need a comment on the line or the line above saying "
        "why (# lazy: start-up time, # cycle: an import cycle), or they go to the top of "
        "the module:\n" + "\n".join(missing)
    )


def test_the_check_finds_an_unexplained_import() -> None:
    source = (
        "import os\n"
        "\n"
        "def explained():\n"
        "    # lazy: a reason\n"
        "    import json\n"
        "\n"
        "    import click\n"
        "    return json, click\n"
        "\n"
        "def inline():\n"
        "    import json  # cycle: a reason\n"
        "    return json\n"
        "\n"
        "def bare():\n"
        "    x = '# not a comment'\n"
        "    import json\n"
        "    return x, json\n"
        "\n"
        "class Holder:\n"
        "    def method(self):\n"
        "        if self:\n"
        "            from json import dumps\n"
        "            return dumps\n"
    )
    assert [node.lineno for node, _ in _function_imports(ast.parse(source))] == [5, 7, 11, 16, 22]
    assert _unexplained(source) == [16, 22]
