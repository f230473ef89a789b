"""The owner id of this installation, and whose a container on a shared Docker is.

Several installations may share one Docker daemon (two users of a lab server, or one
user's laptop and desktop). Each creates, once, a random owner id in its data dir
(``<data dir>/owner-id``, mode 0600) and puts it on every container it creates as the
``cosmos.owner`` label. Reconcile, ``verify --fix`` and ``cosmos host prune`` act only on
their own containers; other installations' containers are listed, never touched.

Containers made before owner ids existed carry no ``cosmos.owner`` label: they count as
ours only when this installation's database knows their run (or batch) id, since run ids
are random and only the installation that made a container recorded its run.
"""

from __future__ import annotations

import contextlib
import enum
import os
import re
import secrets
import time
from collections.abc import Mapping
from pathlib import Path

from cosmos_tui.errors import ConfigError

LABEL_OWNER = "cosmos.owner"
OWNER_FILE = "owner-id"
_OWNER = re.compile(r"^ow_[0-9a-z]{8,64}$")


class Ownership(enum.StrEnum):
    """Whose a container is, as far as this installation can tell."""

    OURS = "ours"  # our owner id on it
    LEGACY = "legacy"  # no owner label, but this database knows its run: ours
    FOREIGN = "foreign"  # another owner id, or no label and a run we do not know


def installation_owner(data_dir: Path) -> str:
    """Return this installation's owner id, creating it on first use.

    Created with ``O_EXCL``, so two processes starting at once agree on one id.

    Raises:
        ConfigError: When the file holds something that is not an owner id.

    """
    path = data_dir / OWNER_FILE
    for _ in range(50):
        try:
            text = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            text = None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the owner id: {exc}", path=path) from exc
        if text:
            if not _OWNER.match(text):
                raise ConfigError(
                    f"{text[:40]!a} is not an owner id (ow_ and letters or digits); restore "
                    "the file from a backup, or remove it only if no container of this "
                    "installation is left on any host",
                    path=path,
                )
            return text
        if text is None:
            data_dir.mkdir(parents=True, exist_ok=True)
            candidate = f"ow_{secrets.token_hex(12)}"
            with contextlib.suppress(FileExistsError):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w", encoding="ascii") as handle:
                    handle.write(candidate + "\n")
                return candidate
        time.sleep(0.01)  # another process created it and is writing it
    raise ConfigError("the owner id file stays empty; remove it and try again", path=path)


def ownership(labels: Mapping[str, str], owner: str | None, known: bool) -> Ownership:
    """Classify a container by its labels.

    Args:
        labels: The container's labels.
        owner: This installation's owner id (None: owner ids are not in use here).
        known: Whether this database knows the run (or batch) the container is labelled
            with.

    """
    label = labels.get(LABEL_OWNER)
    if label and owner and label == owner:
        return Ownership.OURS
    if label:
        return Ownership.FOREIGN
    return Ownership.LEGACY if known else Ownership.FOREIGN
