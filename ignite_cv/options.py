"""``option()``: a dataclass field with a help text and optional choices, from which CLI flags are made."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any


def option(default: Any, help: str, choices: Sequence[Any] | None = None) -> Any:
    """A config field: its ``default``, the ``--help`` text, and the allowed values if there is a fixed set."""
    metadata: dict[str, Any] = {"help": help}
    if choices is not None:
        metadata["choices"] = tuple(choices)
    return dataclasses.field(default=default, metadata=metadata)
