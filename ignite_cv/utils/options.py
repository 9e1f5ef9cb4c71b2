"""``option()``: a dataclass field with a help text and optional choices; CLI flags are made from it."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any


def option(default: Any, help: str, choices: Sequence[Any] | None = None) -> Any:
    """A config field: its ``default``, its ``--help`` text and, for a fixed set, the allowed values."""
    metadata: dict[str, Any] = {"help": help}
    if choices is not None:
        metadata["choices"] = tuple(choices)
    return dataclasses.field(default=default, metadata=metadata)
