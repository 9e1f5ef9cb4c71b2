"""``--lr-find``: Ignite's LR range test (``FastaiLRFinder``) before training, and its suggestion.

The test trains the run's first phase from the initial weights while the learning rate grows
exponentially from ``--lr-find-start`` to ``--lr-find-end`` over ``--lr-find-iterations`` steps, on a
trainer built exactly as the epoch loop builds one (the phase's freezing, optimizer, step function
and train mode), and stops when the smoothed loss exceeds five times its best. Ignite's suggestion is
the LR of the steepest descent of the smoothed loss before its minimum. ``lr_find.png`` (loss against
LR) and ``lr_find.json`` (the curve, the suggestion, the settings) go into the run folder; with
``--lr-find apply`` the run trains with the suggestion as the first phase's LR (``--lr``, or
``--head-lr`` for a head phase), which ``config.json`` then records.

Afterwards the model and everything else a run starts from are exactly as before (bitwise;
``tests/training/test_lr_finder.py``): Ignite's ``attach`` restores the model and the optimizer from
its own ``torch.save`` in a temporary folder, read back with ``torch.load(weights_only=True)`` (no
arbitrary unpickling; the file is Ignite's own, never a user's); what it does not restore —
``requires_grad`` (the phase's freezing), the modules' train/eval modes, the Python/NumPy/torch RNG
streams and the augmentation's generators — :class:`StartSnapshot` keeps in memory and puts back, so
a run with ``--lr-find apply`` trains as a run given that ``--lr`` would.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ignite.distributed as idist
import torch
from ignite.engine import Engine
from ignite.handlers import FastaiLRFinder
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import nn

from ignite_cv.engine import StepOptions, create_trainer, make_grad_scaler
from ignite_cv.figures import save_figure
from ignite_cv.phases import make_optimizer, plan_phases
from ignite_cv.training_state import rng_from_state, rng_to_state
from ignite_cv.utils.atomic import write_json_atomic
from ignite_cv.utils.errors import UserError
from ignite_cv.utils.modules import unwrap

#: Files the LR finder writes into the run folder.
PLOT_FILE = "lr_find.png"
RESULT_FILE = "lr_find.json"
#: Ignite's defaults: loss smoothing factor and divergence threshold (times the best loss).
SMOOTH_F, DIVERGE_TH = 0.05, 5.0


@dataclass
class LRFinderResult:
    """The range test's curve (``lrs``, smoothed ``losses``; ``None`` where non-finite) and suggestion
    (``None`` when the loss never fell for three steps in a row: no suggestion)."""

    lrs: list[float]
    losses: list[float | None]
    suggestion: float | None
    diverged: bool
    note: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class StartSnapshot:
    """What the range test changes besides the weights and the optimizer, kept in memory (no file):
    each parameter's ``requires_grad``, each module's train/eval mode, the global RNG streams and the
    augmentation's generators (``pipeline.augmentation``, if it has them)."""

    def __init__(self, model: nn.Module, pipeline: nn.Module) -> None:
        self.model, self.pipeline = unwrap(model), pipeline
        self.requires_grad = [p.requires_grad for p in self.model.parameters()]
        self.modes = [m.training for m in (*self.model.modules(), *pipeline.modules())]
        self.rng = rng_to_state()
        augmentation = getattr(pipeline, "augmentation", None)
        self.augmentation = augmentation if hasattr(augmentation, "get_rng_state") else None
        if self.augmentation is not None:
            self.aug_seed = self.augmentation.seed
            self.aug_states = {k: v.clone() for k, v in self.augmentation.get_rng_state().items()}

    def restore(self) -> None:
        for param, flag in zip(self.model.parameters(), self.requires_grad):
            param.requires_grad_(flag)
        for module, mode in zip((*self.model.modules(), *self.pipeline.modules()), self.modes):
            module.training = mode
        rng_from_state(*self.rng)
        if self.augmentation is not None:
            self.augmentation.reseed(self.aug_seed)  # drops generators the test created
            self.augmentation.set_rng_state(self.aug_states)


def _loss_of(output: dict) -> torch.Tensor:
    """The step's loss for the finder; a non-finite loss counts as infinite (so the test stops there)."""
    return torch.nan_to_num(output["loss"], nan=math.inf)


def lr_range_test(
    trainer: Engine,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loader,
    iterations: int,
    start_lr: float,
    end_lr: float,
) -> LRFinderResult:
    """Ignite's ``FastaiLRFinder`` on ``trainer`` (a new one, not run yet: the finder counts its
    iterations from 1) over ``loader`` (as many passes as ``iterations`` needs); ``model`` and
    ``optimizer`` are restored by Ignite when it ends."""
    if start_lr >= end_lr:
        raise UserError(
            f"--lr-find-start {start_lr:g} is not below --lr-find-end {end_lr:g}",
            "swap them or widen the range",
        )
    finder = FastaiLRFinder()
    to_save = {"model": model, "optimizer": optimizer}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with finder.attach(
            trainer,
            to_save,
            output_transform=_loss_of,
            num_iter=iterations,
            start_lr=float(start_lr),
            end_lr=float(end_lr),
            smooth_f=SMOOTH_F,
            diverge_th=DIVERGE_TH,
        ) as finding:
            finding.run(loader, max_epochs=math.ceil(iterations / max(len(loader), 1)))
    history = finder.get_results()
    diverged = not any("without loss diverging" in str(w.message) for w in caught)
    lrs = [float(lr) for lr in history["lr"]]
    losses = [float(x) if math.isfinite(x) else None for x in history["loss"]]
    try:
        suggestion, note = float(finder.lr_suggestion()), ""
    except RuntimeError as err:
        suggestion, note = None, str(err)
    if not diverged:
        note = (note + " " if note else "") + "the loss did not diverge up to --lr-find-end"
    return LRFinderResult(lrs, losses, suggestion, diverged, note)


def lr_finder_figure(result: LRFinderResult, configured_lr: float, lr_option: str) -> Figure:
    """Smoothed training loss against the learning rate (log scale), the suggestion and the LR the
    config gives, drawn without pyplot."""
    fig = Figure(figsize=(7.0, 4.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    points = [(lr, loss) for lr, loss in zip(result.lrs, result.losses) if loss is not None]
    if points:
        xs, ys = zip(*points)
        ax.plot(xs, ys, color="tab:blue", linewidth=1.6, label="training loss (smoothed)")
        low, high = min(ys), ys[0]
        ax.set_ylim(low - 0.1 * abs(high - low) - 1e-6, max(ys[: max(1, len(ys) // 2)]) * 1.15 + 1e-6)
    flag = "--" + lr_option.replace("_", "-")
    ax.axvline(
        configured_lr, color="0.4", linestyle=":", linewidth=1.4, label=f"{flag} {configured_lr:.3g} (config)"
    )
    if result.suggestion is not None:
        ax.axvline(
            result.suggestion,
            color="tab:red",
            linestyle="--",
            linewidth=1.6,
            label=f"suggested {result.suggestion:.3g} (steepest descent)",
        )
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss per batch (smoothed)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper left")
    title = f"LR range test: {len(result.lrs)} steps" + (
        ", stopped when the loss passed 5× its best" if result.diverged else " (to --lr-find-end)"
    )
    ax.set_title(title, fontsize=11)
    return fig


def find_lr(
    config,
    model: nn.Module,
    task,
    pipeline: nn.Module,
    device: torch.device,
    loader,
    train_mode: Callable[[nn.Module], None] | None,
    run_dir: Path | None,
    say: Callable[[str], None] = print,
):
    """``--lr-find``: run the range test on the first phase of ``config`` with the run's model (at its
    initial weights), task, batch pipeline and training loader; write its files into ``run_dir`` (None
    on other ranks); return the config to train with (the suggestion applied with ``--lr-find apply``)."""
    if config.lr_find == "off":
        return config
    if idist.get_world_size() > 1:
        raise UserError(
            "--lr-find runs in one process", "find the LR without torchrun, then train with --lr VALUE"
        )
    step = StepOptions.from_config(config)
    phase = plan_phases(config, unwrap(model))[0]
    snapshot = StartSnapshot(model, pipeline)
    if phase.prepare is not None:
        phase.prepare(unwrap(model))
    optimizer = make_optimizer(
        phase.optimizer, model.parameters(), config.lr_find_start, phase.weight_decay, phase.momentum
    )
    trainer = create_trainer(
        model, optimizer, task, pipeline, device, step, make_grad_scaler(device, step.amp), train_mode
    )
    try:
        result = lr_range_test(
            trainer,
            model,
            optimizer,
            loader,
            config.lr_find_iterations,
            config.lr_find_start,
            config.lr_find_end,
        )
    finally:
        snapshot.restore()
    configured = getattr(config, phase.lr_option)
    record = {
        **result.to_dict(),
        "phase": phase.name,
        "option": phase.lr_option,
        "configured_lr": configured,
        "applied": config.lr_find == "apply" and result.suggestion is not None,
        "iterations": config.lr_find_iterations,
        "start_lr": config.lr_find_start,
        "end_lr": config.lr_find_end,
    }
    if run_dir is not None:
        write_json_atomic(Path(run_dir) / RESULT_FILE, record)
        save_figure(lr_finder_figure(result, configured, phase.lr_option), Path(run_dir) / PLOT_FILE)
    flag = "--" + phase.lr_option.replace("_", "-")
    if result.suggestion is None:
        message = f"the LR finder has no suggestion ({result.note})"
        if config.lr_find == "apply":
            raise UserError(message, f"lower --lr-find-start, raise --lr-find-end, or give {flag} yourself")
        say(f"warning: {message}")
        return config
    say(
        f"LR finder ({phase.name} phase): suggested {flag} {result.suggestion:.3g} (config: {configured:.3g})"
        + (f"; see {Path(run_dir) / PLOT_FILE}" if run_dir is not None else "")
    )
    if config.lr_find != "apply":
        return config
    say(f"training with {flag} {result.suggestion:.3g} (--lr-find apply)")
    return dataclasses.replace(config, **{phase.lr_option: result.suggestion})
