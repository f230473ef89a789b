"""Showing untrusted text safely: control characters escaped, secrets masked.

Prompt text, names, paths, host names and anything a GPU host answers are untrusted: an
``ESC ]0;`` in a prompt would retitle the terminal, an ``ESC [2J`` clear it, a bidi
override (U+202E) reverse what follows so that ``gpj.exe`` reads ``exe.jpg``. Every such
string goes through :func:`printable` (or :func:`one_line`) before the CLI prints it or
the TUI draws it; the TUI also draws it as plain text, never as markup.

Secrets: configured ``env`` values and tokens (``HF_TOKEN`` and any key whose name says
TOKEN, KEY, SECRET or PASSWORD) are shown as :data:`MASK` unless the user asks to see them.

No Textual or Rich here: the CLI, the services and the UI all import this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

# C0 controls, DEL, C1 controls; invisible or direction-changing format characters
# (Arabic letter mark, zero-width and LRM/RLM, line/paragraph separators, embeddings and
# overrides, word joiner and isolates, BOM, interlinear annotation); lone surrogates
# (undecodable bytes kept by surrogateescape, which a terminal encoder would refuse).
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff"
    "\ufff9-\ufffb\ud800-\udfff]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\e"}
MASK = "***"
_SECRET_NAME = re.compile(r"TOKEN|KEY|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def one_line(text: object) -> str:
    r"""Return ``text`` with every control and invisible format character made visible.

    Newlines and tabs are escaped too (``\n``, ``\t``): for values shown on one line
    (names, ids, paths, table cells, error lines). ESC shows as ``\e``, other bytes as
    ``\xNN`` and format characters such as U+202E as ``\u202e``.
    """
    value = str(text)
    return _UNSAFE.sub(_escape, value) if _UNSAFE.search(value) else value


def printable(text: object) -> str:
    """Like :func:`one_line`, but newlines and tabs stay: for multi-line text (a prompt)."""
    value = str(text)
    if not _UNSAFE.search(value):
        return value
    return "\n".join(
        "\t".join(one_line(piece) for piece in line.split("\t"))
        for line in value.replace("\r\n", "\n").split("\n")
    )


def is_secret_name(name: str) -> bool:
    """Whether a variable or key called ``name`` holds a secret (HF_TOKEN, API_KEY, ...)."""
    return bool(_SECRET_NAME.search(name))


def mask_env(env: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``env`` with every value masked (container environments may hold tokens).

    A ``$NAME`` reference to a local variable is not itself a secret and stays visible.
    """
    return {
        key: value if isinstance(value, str) and value.startswith("$") else MASK
        for key, value in env.items()
    }


def mask_secrets(data: Any) -> Any:
    """Return a copy of ``data`` (nested dicts and lists) with secrets masked.

    Values of every ``env`` table are masked, and so are values of keys whose name
    looks secret (:func:`is_secret_name`); the ``keymap`` table (key bindings, not
    keys to anything) is left alone. Used by ``cosmos config show``.
    """
    if isinstance(data, Mapping):
        result: dict[str, Any] = {}
        for key, value in data.items():
            if key == "keymap":
                result[key] = value
            elif key == "env" and isinstance(value, Mapping):
                result[key] = mask_env(value)
            elif isinstance(value, str) and is_secret_name(str(key)) and value:
                result[key] = MASK
            else:
                result[key] = mask_secrets(value)
        return result
    if isinstance(data, list):
        return [mask_secrets(item) for item in data]
    return data


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace each secret value (4 characters or longer) found in ``text`` with the mask."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, MASK)
    return text
