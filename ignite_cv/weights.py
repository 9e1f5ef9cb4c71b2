"""Model weights files: a ``.safetensors`` state dict whose metadata rebuilds the model without the recipe.

The metadata key ``"ignite_cv"`` holds a JSON :class:`ModelCard`: the registry name and arguments of
the architecture, the class names, the input channels and size, and the normalization spec. From
that alone, :func:`load_model` builds the architecture, loads the weights (strictly) and
:func:`ignite_cv.pipeline.normalize.build_normalizer` rebuilds the input normalization. Nothing is
ever unpickled.

Every file also stores a CRC-32 of its tensors and card (:mod:`ignite_cv.utils.checksum`), verified on
every load: a truncated, bit-flipped or hand-edited file is refused with its path, never used. The
card's values are checked against :mod:`ignite_cv.utils.limits` and against the file's own tensors
(the architecture is built on the ``meta`` device first) before any memory is allocated for the model.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from torch import nn

from ignite_cv.models import build_model
from ignite_cv.prune.history import has_pruning_history, replay_pruning
from ignite_cv.utils.atomic import write_safetensors_atomic
from ignite_cv.utils.checksum import CHECKSUM_KEY, tensors_checksum, verify_checksum
from ignite_cv.utils.errors import UserError
from ignite_cv.utils.limits import MAX_CLASSES, MAX_IMAGE_SIDE
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
        """The card in ``text``; ``ValueError`` naming the field when a value has the wrong type or size."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"the card is a JSON {type(data).__name__}, not an object")
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in known}
        check_card_values(values)
        return cls(**values)


#: A card's fields: (JSON type, whether it must be present).
_CARD_TYPES: dict[str, tuple[type, bool]] = {
    "arch": (str, True),
    "arch_args": (dict, True),
    "class_names": (list, True),
    "in_channels": (int, True),
    "image_size": (list, True),
    "num_outputs": (int, True),
    "normalization": (dict, True),
    "extra": (dict, False),
    "format_version": (int, False),
}


def check_card_values(values: dict[str, Any]) -> None:
    """Types and sane bounds of a card's values (read from a file), before anything is built from them."""
    for name, (kind, required) in _CARD_TYPES.items():
        if name not in values:
            if required:
                raise ValueError(f"the card has no {name!r}")
            continue
        value = values[name]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValueError(f"{name!r} is a JSON {type(value).__name__}, not {kind.__name__}")
    names = values["class_names"]
    if not 1 <= len(names) <= MAX_CLASSES or not all(isinstance(n, str) for n in names):
        raise ValueError(f"'class_names' must be 1 to {MAX_CLASSES} strings, got {len(names)} entries")
    if values["in_channels"] not in (1, 3):
        raise ValueError(f"'in_channels' is {values['in_channels']}, not 1 or 3")
    size = values["image_size"]
    if len(size) != 2 or not all(
        isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_IMAGE_SIDE for v in size
    ):
        raise ValueError(f"'image_size' is {size!r}, not [height, width] of 1 to {MAX_IMAGE_SIDE} pixels")
    expected = 1 if len(names) == 2 else len(names)
    if values["num_outputs"] != expected:
        raise ValueError(f"'num_outputs' is {values['num_outputs']} but {len(names)} classes need {expected}")


def update_card(path: str | Path, **extra: Any) -> ModelCard:
    """Add ``extra`` to the card of the checkpoint at ``path`` (its weights unchanged), atomically;
    returns the new card (e.g. the decision threshold chosen after training). A card that already holds
    ``extra`` is left as it is: no rewrite of the file."""
    card = read_card(path)
    if all(key in card.extra and card.extra[key] == value for key, value in extra.items()):
        return card
    card = ModelCard(**{**card.__dict__, "extra": {**card.extra, **extra}})
    save_weights(path, read_tensors(path), card)
    return card


def state_dict_for_saving(model: nn.Module) -> dict[str, torch.Tensor]:
    """CPU, contiguous, unaliased copies: safetensors refuses tensors that share memory."""
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in unwrap(model).state_dict().items()}


def save_weights(path: str | Path, tensors: dict[str, torch.Tensor], card: ModelCard) -> None:
    """Write ``tensors`` and ``card`` (and their checksum) to ``path`` atomically (temp file, fsync,
    rename)."""
    text = card.to_json()
    metadata = {METADATA_KEY: text, CHECKSUM_KEY: tensors_checksum(tensors, text)}
    write_safetensors_atomic(path, tensors, metadata)


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
        if _starts_like_safetensors(path):
            raise UserError(f"{path} is damaged or truncated ({first_line(err)})", DAMAGED_FIX) from None
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
    except (json.JSONDecodeError, TypeError, ValueError) as err:
        raise UserError(
            f"{path} has unusable ignite_cv metadata ({first_line(err)})",
            "the file was edited or damaged; use another checkpoint of the run",
        ) from None


def _starts_like_safetensors(path: Path) -> bool:
    """Whether the file begins as safetensors files do (an 8-byte header length, then a JSON object)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") < 100 * 2**20


def read_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of ``path``, verified against the file's checksum when it holds one (files written
    before checksums were stored load unverified)."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise UserError(
            f"{path} is damaged or truncated: not a readable safetensors file ({first_line(err)})",
            DAMAGED_FIX,
        ) from None
    if verify_checksum(tensors, metadata.get(METADATA_KEY, ""), metadata) is False:
        raise UserError(f"{path} fails its checksum: the file is damaged", DAMAGED_FIX)
    return tensors


#: What to do about a damaged checkpoint.
DAMAGED_FIX = (
    "use another checkpoint of the run (its checkpoints/ folder); a run that did not finish rewrites "
    "a damaged best checkpoint from the weights its training state holds when resumed (--resume RUN_DIR)"
)


def _meta_model_of_file(card: ModelCard, path: Path) -> nn.Module:
    """The card's architecture on the ``meta`` device (nothing is allocated), after refusing a card that
    describes a far larger model than the file holds (e.g. an edited ``image_size``)."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            stored = sum(_numel(handle.get_slice(k).get_shape()) for k in handle.keys())  # noqa: SIM118
        with torch.device("meta"):
            model = build_model(
                card.arch, card.in_channels, tuple(card.image_size), card.num_outputs, **card.arch_args
            )
    except UserError:
        raise
    except (SafetensorError, OSError, ValueError, TypeError, RuntimeError) as err:
        raise UserError(
            f"{path} has metadata that does not build a model ({first_line(err)})", DAMAGED_FIX
        ) from None
    described = sum(t.numel() for t in model.state_dict().values())
    if described > 100 * stored + 1_000_000:  # pruning shrinks a model, never 100-fold plus a million
        raise UserError(
            f"{path}'s metadata describes a model of {described:,} values but the file holds {stored:,} "
            f"(image_size {card.image_size}, arch_args {card.arch_args})",
            DAMAGED_FIX,
        )
    return model


def _fully_stored(model: nn.Module) -> bool:
    """Whether every parameter and buffer of ``model`` is in its state dict (no non-persistent buffer
    that only ``__init__`` computes), so loading a state dict sets all of it."""
    keys = set(model.state_dict())
    names = [n for n, _ in model.named_parameters(remove_duplicate=False)]
    names += [n for n, _ in model.named_buffers(remove_duplicate=False)]
    return all(n in keys for n in names)


def _numel(shape) -> int:
    count = 1
    for dim in shape:
        count *= int(dim)
    return count


def build_from_card(card: ModelCard) -> nn.Module:
    """The architecture of ``card``, with its structural edits (pruning) replayed, weights not loaded."""
    model = build_model(
        card.arch, card.in_channels, tuple(card.image_size), card.num_outputs, **card.arch_args
    )
    return replay_pruning(model, card.extra, card.in_channels, card.image_size)


def load_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, ModelCard]:
    """Rebuild the model stored at ``path`` (architecture, structural edits, weights) in eval mode."""
    card = read_card(path)
    tensors = read_tensors(path)
    model = _meta_model_of_file(card, Path(path))
    if has_pruning_history(card.extra) or not _fully_stored(model):
        model = build_from_card(card)  # initialized on the CPU: pruning is replayed on real tensors
    else:  # storage without the random initialization the weights overwrite (ResNet-18: 0.2 s)
        model = model.to_empty(device="cpu")
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise UserError(
            f"{path} does not fit its own architecture {card.arch} ({first_line(err)})",
            "the file is damaged or was edited; use another checkpoint",
        ) from None
    return model.to(device).eval(), card
