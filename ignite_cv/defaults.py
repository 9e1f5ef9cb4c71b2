"""Defaults that train: a recipe's settings for the kind of training the user asked for, and the checks
of options that only make sense together.

A recipe's dataclass defaults are for one kind of training (``resnet_finetune``'s: fine-tuning
pretrained weights, SGD at 1e-4, ImageNet statistics). Training from scratch with them learns nothing
on a small set (issue 13: test ROC-AUC 0.59 on ~550 images), so the other kind's settings
(:attr:`ignite_cv.models.options.TransferOptions.TRAINING_DEFAULTS`) replace the defaults of every
option the user did not set — by a flag or a ``--config`` file
(:func:`ignite_cv.utils.options.given_options`). A value the user set always wins. The resolved
values are the config (so ``config.json`` reruns the same thing), and the run prints what was
resolved first (:func:`resolution_notes`).

``--finetune-epochs F`` resolves ``--epochs`` to ``--warmup-epochs`` + F (``--epochs`` counts all
phases).

Configs built in code (not parsed) are left as they are: nothing tells a value set from a default.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ignite_cv.binary import parse_threshold
from ignite_cv.models.options import TransferOptions
from ignite_cv.utils.errors import UserError
from ignite_cv.utils.options import flag, given_options, mark_given

_NOTES = "_resolution_notes"
SCRATCH = "scratch"
PRETRAINED = "pretrained"


def training_kind(config: Any) -> str:
    """``"scratch"`` for ``--mode scratch`` from random weights, ``"pretrained"`` otherwise."""
    if getattr(config, "mode", "scratch") == "scratch" and getattr(config, "weights", "none") in ("", "none"):
        return SCRATCH
    return PRETRAINED


def resolve_defaults(config: Any) -> Any:
    """``config`` with the training kind's settings for the options the user did not set, and
    ``--epochs`` from ``--finetune-epochs``; the notes to print are kept (:func:`resolution_notes`)."""
    check_choices(config)
    given = given_options(config)
    if given is None or not isinstance(config, TransferOptions):
        return config
    changes: dict[str, Any] = {}
    notes: list[str] = []
    kind = training_kind(config)
    settings = type(config).TRAINING_DEFAULTS.get(kind, {})
    chosen = {k: v for k, v in settings.items() if k not in given and getattr(config, k) != v}
    if chosen:
        what = (
            "training from scratch (--mode scratch, --weights none)"
            if kind == SCRATCH
            else "fine-tuning pretrained weights"
        )
        values = ", ".join(f"{flag(k)} {_show(v)}" for k, v in chosen.items())
        notes.append(f"defaults for {what}: {values} (a flag you pass wins)")
        changes.update(chosen)
    if config.mode == "finetune" and config.finetune_epochs:
        total = config.warmup_epochs + config.finetune_epochs
        if "epochs" in given and config.epochs != total:
            raise UserError(
                f"--epochs {config.epochs} is not --warmup-epochs {config.warmup_epochs} + --finetune-epochs "
                f"{config.finetune_epochs}",
                "pass --epochs (all phases) or --finetune-epochs (the phase after the warm-up), not both",
            )
        if config.epochs != total:
            changes["epochs"] = total
            notes.append(
                f"--epochs {total}: {config.warmup_epochs} warm-up + {config.finetune_epochs} fine-tuning"
            )
    if not changes:
        return config
    resolved = mark_given(dataclasses.replace(config, **changes), given)
    object.__setattr__(resolved, _NOTES, tuple(notes))
    return resolved


def resolution_notes(config: Any) -> tuple[str, ...]:
    """The lines saying what :func:`resolve_defaults` chose (empty when nothing was resolved)."""
    return getattr(config, _NOTES, ())


def check_choices(config: Any) -> None:
    """Options that need each other: the focal settings need ``--loss focal``; ``--class-weights balanced``
    and ``--focal-alpha`` both weigh the classes; ``--threshold`` is 0.5, youden or a probability."""
    if hasattr(config, "threshold"):
        parse_threshold(config.threshold)
    if not hasattr(config, "loss"):
        return
    defaults = {f.name: f.default for f in dataclasses.fields(config)}
    focal_set = [name for name in ("focal_gamma", "focal_alpha") if getattr(config, name) != defaults[name]]
    if config.loss != "focal" and focal_set:
        raise UserError(
            f"{' and '.join(flag(n) for n in focal_set)} set the focal loss, but --loss is {config.loss}",
            "add --loss focal, or drop them",
        )
    if (
        config.loss == "focal"
        and config.class_weights != "none"
        and config.focal_alpha != defaults["focal_alpha"]
    ):
        raise UserError(
            "--class-weights balanced and --focal-alpha both weigh the classes",
            "pass one of them (balanced sets α = n_neg / N for two classes)",
        )


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
