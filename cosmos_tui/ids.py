"""Identifiers: ``ps_`` prompts, ``rs_`` runs, ``bs_`` batches, each followed by hex.

Ids are produced by an injectable :class:`IdSource` so tests can make them predictable.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

from cosmos_tui.errors import ValidationError

PROMPT_PREFIX = "ps_"
RUN_PREFIX = "rs_"
BATCH_PREFIX = "bs_"
HEX_LENGTH = 12

_ID_TEXT = re.compile(r"^(ps_|rs_|bs_)?[0-9a-f]{1,32}$")


class IdSource:
    """Makes new ids.

    Args:
        token_hex: Returns ``n`` random bytes as hex; injectable for deterministic tests.
    """

    def __init__(self, token_hex: Callable[[int], str] = secrets.token_hex) -> None:
        self._token_hex = token_hex

    def new(self, prefix: str) -> str:
        """Return a new id with ``prefix`` (one of the module's prefixes)."""
        return prefix + self._token_hex(HEX_LENGTH // 2)[:HEX_LENGTH]


def check_id_text(text: str) -> str:
    """Normalise a typed id or prefix and reject text that cannot be one.

    Args:
        text: What the user typed, e.g. ``rs_3fa2`` or ``3fa2``.

    Returns:
        The lower-cased, stripped text.

    Raises:
        ValidationError: When the text cannot be an id or an id prefix.
    """
    cleaned = text.strip().lower()
    if not _ID_TEXT.match(cleaned) or cleaned in (PROMPT_PREFIX, RUN_PREFIX, BATCH_PREFIX):
        raise ValidationError(
            f"'{text}' is not an id: expected ps_<hex> or rs_<hex> (a unique prefix is enough)",
            field="id",
        )
    return cleaned


def kind_of(id_text: str) -> str | None:
    """Return ``prompt``, ``run`` or ``batch`` for a prefixed id, or None for bare hex."""
    if id_text.startswith(PROMPT_PREFIX):
        return "prompt"
    if id_text.startswith(RUN_PREFIX):
        return "run"
    if id_text.startswith(BATCH_PREFIX):
        return "batch"
    return None
