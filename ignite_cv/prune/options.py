"""What pruning does: how much (a ratio, a MAC budget or a speed-up), how channels are ranked, and the
fine-tuning and timing after it. ``tools/prune.py`` takes these options as they are; a recipe's
``--prune-after`` takes them under the ``prune_`` prefix (:class:`PruneAfterOptions`).

MACs are multiply-accumulates of one forward pass at batch size 1.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from typing import Any

from ignite_cv.utils.errors import UserError
from ignite_cv.utils.options import option, prefixed

IMPORTANCES = ("magnitude", "taylor", "bn-scale")
_SUFFIXES = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}


def parse_count(text: str) -> float:
    """``'5e6'``, ``'5M'``, ``'2.5g'``, ``'300k'`` → a number."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmgKMG]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected a count such as 5e6, 5M or 300k, got {text!r}")
    return float(match.group(1)) * _SUFFIXES[match.group(2).lower()]


@dataclass
class PruneOptions:
    """How much to prune (exactly one of ratio, target_macs, speedup) and how; then fine-tuning and timing."""

    ratio: float | None = option(None, "fraction of channels to remove, in (0, 1)")
    target_macs: float | None = option(
        None, "largest MAC count (one image) of the pruned model, e.g. 5M", parse=parse_count
    )
    speedup: float | None = option(None, "divide the MACs by at least this factor (> 1)")
    importance: str = option(
        "magnitude",
        "channel ranking: weight magnitude, first-order Taylor (uses training batches) or BatchNorm scale",
        choices=IMPORTANCES,
    )
    global_pruning: bool = option(
        False,
        "rank channels across layers (layers lose different fractions) instead of removing the same "
        "fraction from every layer",
        aliases=("--global",),
    )
    iterative_steps: int = option(
        1, "reach the ratio in this many pruning steps, re-ranking between them", minimum=1
    )
    finetune_epochs: int = option(3, "fine-tuning epochs after pruning (0 = none)", minimum=0)
    finetune_lr: float = option(
        0.0, "fine-tuning peak learning rate, cosine schedule (0 = --lr / 10)", minimum=0.0
    )
    taylor_samples: int = option(
        512, "training images whose loss gradients rank channels for taylor", minimum=1
    )
    latency_warmup: int = option(5, "untimed forward passes before timing each model", minimum=0)
    latency_repeats: int = option(30, "timed forward passes per batch size", minimum=1)
    latency_budget_s: float = option(
        10.0, "stop timing a model after this many seconds (at least 5 passes)", minimum=0.0
    )

    @classmethod
    def from_config(cls, config: Any) -> PruneOptions:
        """A training config's ``--prune-after R`` options (:class:`PruneAfterOptions`): ratio R."""
        values = {name: getattr(config, RENAME.get(name, PREFIX + name)) for name in PRUNE_AFTER_FIELDS}
        return cls(ratio=config.prune_after, **values)

    def check(self) -> None:
        """Refuse bad settings before anything is measured (a one-line UserError)."""
        check_prune_spec(self.ratio, self.target_macs, self.speedup, self.importance, self.iterative_steps)
        if self.finetune_epochs < 0:
            raise UserError(
                f"--finetune-epochs {self.finetune_epochs} must be >= 0", "pass 0 to skip fine-tuning"
            )
        if self.finetune_lr < 0:
            raise UserError(f"--finetune-lr {self.finetune_lr} must be >= 0", "pass 0 for --lr / 10")
        if self.latency_repeats < 1 or self.latency_warmup < 0 or self.taylor_samples < 1:
            raise UserError(
                "--latency-repeats and --taylor-samples must be >= 1 and --latency-warmup >= 0",
                "fix the flag",
            )

    def finetune_peak_lr(self, lr: float) -> float:
        """The fine-tuning LR: ``finetune_lr``, or the training ``lr`` / 10 when it is 0."""
        return self.finetune_lr or lr / 10


def check_prune_spec(
    ratio: float | None,
    target_macs: float | None,
    speedup: float | None,
    importance: str,
    iterative_steps: int,
) -> None:
    given = [
        name
        for name, v in (("--ratio", ratio), ("--target-macs", target_macs), ("--speedup", speedup))
        if v is not None
    ]
    if len(given) != 1:
        raise UserError(
            f"give exactly one of --ratio, --target-macs, --speedup (got {', '.join(given) or 'none'})",
            "e.g. --ratio 0.5 removes half the channels of each layer",
        )
    if ratio is not None and not 0.0 < ratio < 1.0:
        raise UserError(
            f"--ratio {ratio} is outside (0, 1)", "pass the fraction of channels to remove, e.g. --ratio 0.5"
        )
    if speedup is not None and not speedup > 1.0:
        raise UserError(
            f"--speedup {speedup} must be greater than 1", "pass e.g. --speedup 2 for half the MACs"
        )
    if target_macs is not None and not target_macs > 0:
        raise UserError(f"--target-macs {target_macs} must be positive", "pass a MAC count such as 5e6 or 5M")
    if importance not in IMPORTANCES:
        raise UserError(f"unknown --importance {importance!r}", f"choose one of: {', '.join(IMPORTANCES)}")
    if iterative_steps < 1:
        raise UserError(f"--iterative-steps {iterative_steps} must be >= 1", "pass 1 to prune in one step")


#: The pruning options a training run exposes (as ``--prune-...``); the rest keep their defaults.
PRUNE_AFTER_FIELDS = ("importance", "global_pruning", "iterative_steps", "finetune_epochs", "finetune_lr")
PREFIX = "prune_"
RENAME = {"global_pruning": "prune_global", "finetune_lr": "prune_lr"}


_PrunePrefixed = prefixed(PruneOptions, PREFIX, RENAME, include=PRUNE_AFTER_FIELDS)


@dataclass
class PruneAfterOptions(_PrunePrefixed):
    """The ``--prune-after`` family of config fields (a recipe's config inherits them)."""

    prune_after: float = option(
        0.0,
        "after training, prune this fraction of channels (0 < R < 1) from a copy of the best model, "
        "fine-tune it and compare before/after in <run>/pruning/ (0 = off)",
        minimum=0.0,
        maximum=0.99,
    )


def check_prune_after(config: Any) -> None:
    """Refuse bad ``--prune-after`` settings before training starts (a one-line UserError)."""
    if config.prune_after == 0:
        return
    if not 0.0 < config.prune_after < 1.0:
        raise UserError(
            f"--prune-after {config.prune_after} is outside (0, 1)",
            "pass the fraction of channels to remove, e.g. 0.5, or 0",
        )
    PruneOptions.from_config(config).check()
    if config.nproc_per_node > 1:
        raise UserError(
            "--prune-after runs in one process",
            "train without --nproc-per-node, or run tools/prune.py on the best checkpoint afterwards",
        )
