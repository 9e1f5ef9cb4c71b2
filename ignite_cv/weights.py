"""Model weights files: a ``.safetensors`` state dict whose metadata rebuilds the model without the recipe.

The metadata key ``"ignite_cv"`` holds a JSON :class:`ModelCard`: the registry name and arguments of
the architecture, the class names, the input channels and size, and the normalization spec. From
that alone, :func:`load_model` builds the architecture, loads the weights (strictly) and
:func:`ignite_cv.pipeline.normalize.build_normalizer` rebuilds the input normalization. Nothing is
ever unpickled.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from ignite_cv.models import build_model
from ignite_cv.prune.history import replay_pruning
from ignite_cv.utils.atomic import atomic_path
from ignite_cv.utils.errors import UserError
from ignite_cv.utils.modules import unwrap
from ignite_cv.utils.text import first_line

METADATA_KEY = "ignite_cv"
FORMAT_VERSION = 1


@dataclass
class ModelCard:
    """Everything needed to rebuild and use a trained model. Sizes are in pixels, ``image_size`` is (H, W)."""

    arch: str
    arch_args: dict[str, Any]
    class_names: list[str]
    in_channels: int
    image_size: list[int]
    num_outputs: int
    normalization: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        data = json.loads(text)
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def update_card(path: str | Path, **extra: Any) -> ModelCard:
    """Add ``extra`` to the card of the checkpoint at ``path`` (its weights unchanged), atomically;
    returns the new card (e.g. the decision threshold chosen after training)."""
    card = read_card(path)
    card = ModelCard(**{**card.__dict__, "extra": {**card.extra, **extra}})
    save_weights(path, read_tensors(path), card)
    return card


def state_dict_for_saving(model: nn.Module) -> dict[str, torch.Tensor]:
    """CPU, contiguous, unaliased copies: safetensors refuses tensors that share memory."""
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in unwrap(model).state_dict().items()}


def save_weights(path: str | Path, tensors: dict[str, torch.Tensor], card: ModelCard) -> None:
    """Write ``tensors`` and ``card`` to ``path`` atomically (temp file, fsync, rename)."""
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={METADATA_KEY: card.to_json()})


def save_model(path: str | Path, model: nn.Module, card: ModelCard) -> None:
    save_weights(path, state_dict_for_saving(model), card)


def read_card(path: str | Path) -> ModelCard:
    """The model card of an ignite_cv weights file; a one-line UserError for anything else."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"weights file {path} does not exist", "pass the path of a .safetensors checkpoint")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise UserError(
            f"{path} is not a safetensors file ({first_line(err)})",
            "pass a .safetensors checkpoint written by ignite_cv (checkpoints/ of a run folder)",
        ) from None
    if METADATA_KEY not in metadata:
        raise UserError(
            f"{path} has no ignite_cv metadata, so the model cannot be rebuilt from it",
            "pass a checkpoint from a run folder's checkpoints/, or use --weights FILE to load bare weights",
        )
    try:
        return ModelCard.from_json(metadata[METADATA_KEY])
    except (json.JSONDecodeError, TypeError) as err:
        raise UserError(f"{path} has unreadable ignite_cv metadata ({err})", "re-save the model") from None


def read_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise UserError(
            f"{path} is not a readable safetensors file ({first_line(err)})", "re-save it"
        ) from None


def build_from_card(card: ModelCard) -> nn.Module:
    """The architecture of ``card``, with its structural edits (pruning) replayed, weights not loaded."""
    model = build_model(
        card.arch, card.in_channels, tuple(card.image_size), card.num_outputs, **card.arch_args
    )
    return replay_pruning(model, card.extra, card.in_channels, card.image_size)


def load_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, ModelCard]:
    """Rebuild the model stored at ``path`` (architecture, structural edits, weights) in eval mode."""
    card = read_card(path)
    model = build_from_card(card)
    tensors = read_tensors(path)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise UserError(
            f"{path} does not fit its own architecture {card.arch} ({first_line(err)})",
            "the file is damaged or was edited; use another checkpoint",
        ) from None
    return model.to(device).eval(), card
