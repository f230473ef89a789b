"""Container paths -> host paths: how the sandbox honours bind mounts without containers.

Arguments, and the spec and batch files a ``torchrun`` command names, are translated
through the container's mounts (:meth:`Container.translate`); the files are copied into
the container's private folder, so the client's files are never changed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cosmos_tui.sandbox.container_types import Container


def translate_arg(arg: str, container: Container) -> str:
    """Translate a path argument (or the value of ``--flag=path``) into a host path."""
    if arg.startswith("--") and "=" in arg:
        flag, _, value = arg.partition("=")
        return f"{flag}={container.translate(value)}"
    return container.translate(arg)


def copy_specs(args: list[str], container: Container) -> list[str]:
    """Point spec and batch flags at copies whose container paths are translated."""
    result = list(args)
    targets = []
    for index, arg in enumerate(result[:-1]):
        if arg in ("--controlnet_specs", "--batch_input_path"):
            targets.append((index + 1, arg))
        elif arg in ("-i", "--input-files"):  # Transfer2.5: one or more .json/.jsonl files
            follow = index + 1
            while follow < len(result) and not result[follow].startswith("-"):
                kind = "--batch_input_path" if result[follow].endswith(".jsonl") else arg
                targets.append((follow, kind))
                follow += 1
    for index, arg in targets:
        source = Path(result[index])
        if not source.is_absolute():
            continue
        try:
            text = source.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        copy = container.private_dir / f"translated-{source.name}"
        if arg == "--batch_input_path":
            lines = [
                json.dumps(translate_json(json.loads(line), container)) if line else line
                for line in text.split("\n")
            ]
            copy.write_text("\n".join(lines), encoding="utf-8")
        else:
            try:
                data = json.loads(text)
            except json.JSONDecodeError:
                continue
            copy.write_text(json.dumps(translate_json(data, container)), encoding="utf-8")
        result[index] = str(copy)
    return result


def translate_json(value: Any, container: Container) -> Any:
    """Translate every absolute container path among the strings of a JSON value."""
    if isinstance(value, str):
        return container.translate(value) if value.startswith("/") else value
    if isinstance(value, list):
        return [translate_json(item, container) for item in value]
    if isinstance(value, dict):
        return {key: translate_json(item, container) for key, item in value.items()}
    return value
