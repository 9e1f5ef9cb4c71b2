"""``fit(config)``: a training run from data to run folder, as named stages read top to bottom.

    process → data → model → output → engines → train → finish

(the shape of Ignite's ``examples/cifar10/main.py``: data, model, engines and handlers, run). Each
stage is one function that returns what the next ones use. Every phase trains on the one epoch loop
(:func:`ignite_cv.training.loop.run_phase`); this module adds what a run has beyond it: its
checkpoints, resumable training states and profile (as phase hooks), the test evaluation of the best
model, the report and the summary.

Runs in every process of a distributed job (``idist.Parallel``: plain, spawned with
``--nproc-per-node``, or under ``torchrun``); rank 0 alone writes the run folder and prints, behind
one object (:class:`~ignite_cv.training.run_output.RunOutput`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ignite.distributed as idist
import torch
from ignite.engine import Events
from ignite.handlers import Checkpoint
from ignite.utils import manual_seed
from torch import nn

from ignite_cv.data.classes import class_counts
from ignite_cv.data.placement import make_loader, place_data, training_batches
from ignite_cv.data.sources import load_data
from ignite_cv.data.splits import DataBundle
from ignite_cv.data.stats import fingerprint_split
from ignite_cv.defaults import check_choices, resolution_notes
from ignite_cv.engine import StepOptions, create_evaluator
from ignite_cv.evaluation import run_evaluation
from ignite_cv.handlers.best_weights import BestWeights
from ignite_cv.handlers.checkpoint import (
    best_checkpoint,
    checkpoint_card,
    last_checkpoint,
    top_checkpoint_path,
)
from ignite_cv.handlers.collapse import CollapseWarning, collapse_epochs
from ignite_cv.handlers.monitor import Monitor
from ignite_cv.handlers.nonfinite import NonFiniteLossError
from ignite_cv.handlers.tensorboard import ValidationImageGrid
from ignite_cv.metrics import MATRIX_METRICS, evaluation_metrics, scalar_metrics
from ignite_cv.models import build_model, model_arg_names
from ignite_cv.models.freezing import check_mode, set_train_mode
from ignite_cv.models.init import initialize
from ignite_cv.models.options import TransferOptions
from ignite_cv.phases import describe_plan, plan_phases, trained_parameters
from ignite_cv.pipeline.augment import build_augmentation
from ignite_cv.pipeline.batch_pipeline import BatchPipeline
from ignite_cv.pipeline.normalize import build_normalizer, resolve_normalization
from ignite_cv.prune.options import check_prune_after
from ignite_cv.prune.workflow import prune_after_training
from ignite_cv.task import ClassificationTask, task_from_config
from ignite_cv.training.decisions import (
    at_threshold,
    card_extra,
    check_watched_metrics,
    decide_threshold,
    put_positive_last,
)
from ignite_cv.training.lifecycle import claim_run
from ignite_cv.training.loop import LoopParts, PhaseHook, Timeline, run_phase
from ignite_cv.training.lr_finder import find_lr
from ignite_cv.training.resume import (
    SkippingLoader,
    completed_epochs,
    restore_shared,
    state_folder,
    training_finished,
)
from ignite_cv.training.run_hooks import (
    Histograms,
    LastCheckpoint,
    ModelSummary,
    RunProfile,
    TrainingStates,
    live_curves,
)
from ignite_cv.training.run_output import RunOutput
from ignite_cv.training_state import (
    TrainingState,
    latest_valid_state,
    list_states,
)
from ignite_cv.utils.allocator import tune_cpu_allocator
from ignite_cv.utils.devices import resolve_device
from ignite_cv.utils.distributed import choose_backend, leave_together, per_process_batch, say
from ignite_cv.utils.errors import UserError, write_failure
from ignite_cv.utils.modules import count_params, unwrap
from ignite_cv.utils.options import check_options
from ignite_cv.weights import ModelCard, load_model, read_tensors, save_weights, update_card

#: Folder inside --output-dir caching training-split statistics by fingerprint (shared by runs).
STATS_CACHE = ".stats-cache"


def fit(config, on_phase_end=None, hooks: Sequence[PhaseHook] = ()) -> dict | None:
    """Train as ``config`` says; returns the summary (in the process that wrote it; else None).

    ``on_phase_end(model, phase_index, phase_result)``, if given, is called in every process after
    each phase with the bare (unwrapped) model, e.g. to inspect or export per-rank weights. ``hooks``
    are added to every phase after the run's own (e.g. a tuner's pruning handler on the evaluator).
    """
    check_options(config)  # every field by its declared type and range, a config built in Python too
    Monitor.check_name(config.monitor)
    backend = choose_backend(config.nproc_per_node, config.backend, config.device)
    nproc = config.nproc_per_node if config.nproc_per_node > 1 else None
    result: dict = {}
    with claim_run(config, say) as run:  # the run folder, locked; a resumed run's config
        if run.finished is not None:
            return run.finished
        try:
            with idist.Parallel(backend=backend, nproc_per_node=nproc) as parallel:
                parallel.run(_fit_in_process, run.config, run.path, result, on_phase_end, tuple(hooks))
        except OSError as err:  # a full disk, a read-only folder: one line, the states written intact
            failure = write_failure(err, _write_fix(run.path))
            if failure is None:
                raise
            raise failure from None
    return result.get("summary")


def _write_fix(run_dir: Path | None) -> str:
    if run_dir is not None and list_states(state_folder(run_dir)):
        return f"free space (or make the folder writable), then continue the run with --resume {run_dir}"
    return "free space or pass a writable --output-dir, then start the run again"


def _fit_in_process(
    local_rank: int, config, run_dir: Path | None, result: dict, on_phase_end=None, hooks=()
) -> None:
    run = train_in_process(config, run_dir=run_dir, on_phase_end=on_phase_end, hooks=hooks)
    if run.summary is not None:
        result["summary"] = run.summary
    leave_together()


@dataclass
class TrainedRun:
    """What one run leaves in its process: the summary (where it was written, else None) and the model
    with its best weights restored (every rank), for callers that keep using it (folds)."""

    summary: dict | None
    model: RunModel
    data: RunData
    device: torch.device


def train_in_process(
    config,
    bundle: DataBundle | None = None,
    run_dir: Path | None = None,
    on_phase_end=None,
    hooks: Sequence[PhaseHook] = (),
) -> TrainedRun:
    """One run in this process of an ``idist.Parallel`` group (``fit`` is this inside its own group).

    ``bundle``: train, validate and test on these splits instead of loading ``config``'s data set (a
    fold of a cross-validation study, whose splits are index subsets of one loaded data set).
    ``run_dir``: the run folder :func:`fit` claimed; None: ``config.resume``'s, or a new one.
    """
    started = time.perf_counter()
    for note in resolution_notes(config):
        say(note)
    device = start_process(config)
    data = prepare_data(config, device, bundle)
    model = prepare_model(config, data.bundle, device)
    state = resume_state(config)
    output = RunOutput.open(config, run_dir if run_dir is not None else (config.resume or None))
    if state is None:  # --lr-find: before anything trains (a resumed run has its LR in its config)
        loader, mode = data.train_loader, train_mode_of(config)
        config = find_lr(
            config, model.model, model.task, model.pipeline, device, loader, mode, output.path, say
        )
    timeline = Timeline()
    resumed_epochs = completed_epochs(state) if state else (0 if config.resume else None)
    output.start(config, data.bundle, timeline, resumed_epochs)
    engines = build_engines(config, data, model, output, device, timeline)
    _attach_image_grid(config, data, model, engines, output)
    if state is not None:
        restore_shared(engines.parts, state, engines.checkpoints)
        started -= state.meta["run"]["elapsed_s"]
    curves = live_curves(config, output)
    try:
        summary_hook = ModelSummary(output, (data.bundle.channels, *data.bundle.image_size))
        elapsed = lambda: time.perf_counter() - started  # noqa: E731
        run_hooks = (summary_hook, *([curves] if curves is not None else []), *hooks)
        try:
            train(config, engines, output, state, elapsed, on_phase_end, run_hooks)
        except BaseException:
            if curves is not None:
                curves.close()
            raise
        if curves is not None:
            # The last drawing before the test, not beside it: a thread drawing while torch's two
            # OpenMP threads evaluate on two cores slows the evaluation by more than the drawing takes
            # (ants vs bees at 64 px: the end of a run 1.58-1.79 s drawn before, 1.73-1.86 s beside).
            curves.close()
        # The last phase's checkpoint and state writes (mostly waiting for the disk) go on beside the
        # test; finish waits for every file before the summary.
        summary = finish(config, data, model, engines, output, time.perf_counter() - started)
    finally:
        output.close()
    return TrainedRun(summary, model, data, device)


# --- process ---------------------------------------------------------------------------------------


def start_process(config) -> torch.device:
    """Allocator, seeds, determinism, pre-flight checks; the device this process trains on."""
    tune_cpu_allocator()  # before the first large tensor: see ignite_cv/utils/allocator.py
    check_prune_after(config)
    check_choices(config)
    if config.prune_after > 0 and idist.get_world_size() > 1:
        raise UserError(
            "--prune-after runs in one process", "run it without torchrun, or prune later with tools/prune.py"
        )
    device = resolve_device(config.device)
    manual_seed(config.seed)
    if config.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=False)
        torch.backends.cudnn.benchmark = False
    return device


# --- data ------------------------------------------------------------------------------------------


@dataclass
class RunData:
    bundle: DataBundle
    train_loader: SkippingLoader
    val_loader: Any


def prepare_data(config, device: torch.device, bundle: DataBundle | None = None) -> RunData:
    """The data set (``bundle`` if given, else ``config``'s), placed where it is read from, and this
    process's training and validation loaders."""
    bundle = put_positive_last(config, bundle if bundle is not None else load_data(config, config.seed))
    bundle = place_data(bundle, config, device)
    per_process_batch(config.batch_size, idist.get_world_size())  # a batch smaller than the world fails early
    train_loader = SkippingLoader(make_loader(config, bundle, bundle.train, train=True, device=device))
    val_loader = make_loader(config, bundle, bundle.val, train=False, device=device)
    say(
        f"data: {bundle.name}, {len(bundle.train)} train / {len(bundle.val)} val / {len(bundle.test)} test, "
        f"{bundle.num_classes} classes, {bundle.channels}×{bundle.image_size[0]}×{bundle.image_size[1]}"
        + (f"; skipped {len(bundle.skipped)} unreadable files" if bundle.skipped else "")
    )
    return RunData(bundle, train_loader, val_loader)


# --- model -----------------------------------------------------------------------------------------


@dataclass
class RunModel:
    task: ClassificationTask
    pipeline: BatchPipeline
    model: nn.Module
    card: ModelCard


def prepare_model(config, data: DataBundle, device: torch.device) -> RunModel:
    """The task, the batch pipeline (normalization from the training split, augmentation) and the model
    with its initial weights and card, on ``device``."""
    task = task_from_config(config, data.num_classes, class_counts(data.train, data.num_classes)).to(device)
    check_watched_metrics(config, evaluation_metrics(task, device))
    decode = {"size": list(data.image_size), "channels": data.channels, "center_crop": config.center_crop}
    normalization = resolve_normalization(
        config,
        data.channels,
        training_batches(config, data),
        fingerprint_split(data.train, decode=decode),
        Path(config.output_dir) / STATS_CACHE,
    )
    augmentation = build_augmentation(config, data.channels, data.image_size)
    if augmentation is not None and hasattr(augmentation, "reseed"):
        augmentation.reseed(config.seed + idist.get_rank())  # each rank augments differently
    pipeline = BatchPipeline(build_normalizer(normalization), augmentation).to(device)
    model, card = _build_model(config, data, task, normalization)
    model = model.to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return RunModel(task, pipeline, model, card)


def _build_model(config, data: DataBundle, task: ClassificationTask, normalization: dict):
    """The registry model with its initial weights (checked against the transfer mode) and its card."""
    arch_args = {
        name: getattr(config, name) for name in model_arg_names(config.model) if hasattr(config, name)
    }
    arch_args = {k: list(v) if isinstance(v, tuple) else v for k, v in arch_args.items()}
    model = build_model(config.model, data.channels, data.image_size, task.num_outputs, **arch_args)
    initialize(model, config.init, config.init_distribution)  # before pretrained weights overwrite theirs
    if isinstance(config, TransferOptions):
        check_mode(model, config.mode, config.weights, config.unfreeze)
        if config.mode != "scratch" and config.weights == "none":
            say(
                f"warning: --mode {config.mode} with --weights none trains on a random frozen backbone "
                "(a baseline)"
            )
    weights = getattr(config, "weights", "none")  # every model family's InitialWeightsOptions
    if weights not in ("", "none"):
        from ignite_cv.models.pretrained import load_pretrained

        say(load_pretrained(model, config.model, weights, data.channels))
    card = ModelCard(
        arch=config.model,
        arch_args=arch_args,
        class_names=list(data.class_names),
        in_channels=data.channels,
        image_size=list(data.image_size),
        num_outputs=task.num_outputs,
        normalization=normalization,
        extra=card_extra(config, list(data.class_names)),
    )
    return model, card


def train_mode_of(config):
    """How a training epoch sets the model's modes: frozen BatchNorm stays in eval unless ``--train-bn``."""
    return functools.partial(set_train_mode, train_bn=isinstance(config, TransferOptions) and config.train_bn)


# --- resume ----------------------------------------------------------------------------------------


def resume_state(config) -> TrainingState | None:
    """The newest valid training state of the run being resumed (None for a new run)."""
    if not config.resume:
        return None
    if not list_states(state_folder(Path(config.resume))):
        return None  # stopped before its first save: it starts over (training/lifecycle.py)
    state = latest_valid_state(state_folder(Path(config.resume)), warn=say)
    say(f"resuming {config.resume} from {state.path.name} (epoch {completed_epochs(state)} completed)")
    return state


# --- engines and handlers --------------------------------------------------------------------------


@dataclass
class RunEngines:
    parts: LoopParts
    #: Ignite ``Checkpoint`` s by name ("best" on the evaluator, "last" on each phase's trainer).
    checkpoints: dict[str, Checkpoint]


def build_engines(
    config, data: RunData, model: RunModel, output: RunOutput, device: torch.device, timeline: Timeline
) -> RunEngines:
    """The shared evaluator with its metrics, the monitored metric, best weights and best/last checkpoints."""
    step = StepOptions.from_config(config)
    metrics = evaluation_metrics(model.task, device)
    evaluator = create_evaluator(model.model, model.task, model.pipeline, device, step, metrics)
    monitor = Monitor.resolve(config.monitor, config.monitor_mode, model.task.binary)
    monitor.check_available(metrics)
    parts = LoopParts(
        model=model.model,
        task=model.task,
        pipeline=model.pipeline,
        device=device,
        step=step,
        train_loader=data.train_loader,
        val_loader=data.val_loader,
        evaluator=evaluator,
        monitor=monitor,
        best=BestWeights(model.model, monitor),
        total_epochs=config.epochs,
        log_every=config.log_every,
        train_mode=train_mode_of(config),
        sync_bn=config.sync_bn,
        train_metrics=config.train_metrics,
        timeline=timeline,
        history=output.history,
        board=output.board,
        val_metric_names=[name for name in metrics if name not in MATRIX_METRICS],
        progress=output.writes,
        writer=output.writer,
        collapse=CollapseWarning(
            data.bundle.class_names, say, lambda: parts.timeline.epoch, collapse_epochs(config.epochs)
        ),
    )
    epoch = lambda: parts.timeline.epoch  # noqa: E731
    parts.best.attach(evaluator, epoch)
    saver = output.saver(model.card, epoch)
    best = best_checkpoint(model.model, saver, monitor, config.keep_best, epoch)
    evaluator.add_event_handler(Events.COMPLETED, best)
    return RunEngines(parts, {"best": best, "last": last_checkpoint(model.model, saver, epoch)})


def _attach_image_grid(
    config, data: RunData, model: RunModel, engines: RunEngines, output: RunOutput
) -> None:
    if config.image_grid_every <= 0 or output.board is None:
        return
    images, labels = next(iter(data.val_loader))
    images, labels = images[:16], labels[:16]

    @torch.inference_mode()
    def predict(batch: torch.Tensor) -> torch.Tensor:
        model.model.eval()
        logits = model.model(model.pipeline(batch.to(engines.parts.device), augment=False))
        return model.task.class_scores(logits).argmax(dim=1)

    grid = ValidationImageGrid(
        predict, images, labels, data.bundle.class_names, output.board, config.image_grid_every
    )
    grid.attach(engines.parts.evaluator)


# --- train -----------------------------------------------------------------------------------------


def train(
    config,
    engines: RunEngines,
    output: RunOutput,
    state: TrainingState | None,
    elapsed,
    on_phase_end,
    extra_hooks: Sequence[PhaseHook] = (),
) -> None:
    """Every phase of ``config`` on the epoch loop, from where ``state`` left off."""
    parts = engines.parts
    hooks = [
        LastCheckpoint(engines.checkpoints["last"]),
        TrainingStates(config, output, engines.checkpoints, elapsed),
        RunProfile(config, output),
        Histograms(config, output),
        *extra_hooks,
    ]
    plan = plan_phases(config, unwrap(parts.model))
    say(describe_plan(plan))
    if state is not None and training_finished(state, [phase.epochs for phase in plan]):
        say("training had ended when the run stopped; finishing it: test evaluation, report, summary")
    try:
        for index, phase in enumerate(plan):
            if state is not None and index < state.meta["phase"]:
                continue
            resume_here = state if state is not None and index == state.meta["phase"] else None
            last = index == len(plan) - 1  # its files are waited for by finish, after the test evaluation
            result = run_phase(parts, phase, index, hooks, resume_here, say=say, wait_files=not last)
            if on_phase_end is not None:
                on_phase_end(unwrap(parts.model), index, result)
    except NonFiniteLossError as err:
        saved = output.folder is not None and list_states(state_folder(output.path))
        where = (
            f"the last good state is in {state_folder(output.path)} (--resume {output.path} after the fix)"
            if saved
            else "no checkpoint was saved before it"
        )
        raise UserError(str(err), f"lower --lr, use --grad-clip, or --amp none; {where}") from None


# --- finish ----------------------------------------------------------------------------------------


def finish(
    config,
    data: RunData,
    model: RunModel,
    engines: RunEngines,
    output: RunOutput,
    elapsed_s: float,
):
    """The best model on the test split, the report, the summary (and ``--prune-after``); returns the
    summary in the process that wrote it."""
    parts = engines.parts
    parts.best.restore()  # the model now holds the best weights: those of the best checkpoint's file
    best = engines.checkpoints["best"]
    best_file = top_checkpoint_path(best)
    net = _test_net(model, parts, best_file)
    check = None
    if best_file is not None:  # the file is read back and verified beside the test evaluation
        best.save_handler.wait_for(best_file)
        check = best.save_handler.writer.submit(checkpoint_damage, best_file)
    threshold = decide_threshold(
        config, net, model.task, model.pipeline, parts.device, data.val_loader, parts.step
    )
    test_metrics, (scores, labels, images) = _evaluate_test(config, data, model, parts, net)
    if check is not None:
        _settle_best_file(check.result(), best_file, model.card, parts, threshold)
    total = count_params(model.model)[0]
    trainable = trained_parameters(plan_phases(config, unwrap(model.model)), unwrap(model.model))
    bundle = data.bundle
    summary = {
        "run_dir": str(output.path) if output.path else None,
        "test": scalar_metrics(test_metrics),
        "test_confusion_matrix": test_metrics["confusion_matrix"].tolist(),
        "best": parts.best.summary(),
        "best_checkpoint": str(best_file) if best_file else None,
        "epochs_run": parts.timeline.epoch,
        "wall_time_s": round(elapsed_s, 2),
        "params": {"total": total, "trainable": trainable},
        "threshold": threshold,
        **at_threshold(labels, scores, threshold),
        "phases": parts.phase_results,
        "world_size": idist.get_world_size(),
        "data": {
            "train": len(bundle.train),
            "val": len(bundle.val),
            "test": len(bundle.test),
            "skipped": len(bundle.skipped),
        },
    }
    if not output.writes:
        return None
    probs = scores.softmax(dim=1)
    summary["report"] = output.write_report(
        labels, probs, bundle.class_names, images, parts.timeline.epoch, threshold
    )
    if config.explain == "report" and images is not None:
        from ignite_cv.explain.report_cams import write_report_cams  # the CAM library loads only here

        cams = write_report_cams(
            model.model,
            model.card,
            images,
            labels,
            probs,
            output.folder.report,
            method=config.explain_method,
            count=config.explain_images,
            seed=config.seed,
            tb_writer=output.board.writer,
            global_step=parts.timeline.epoch,
            target_layer=config.explain_layer,
        )
        summary["explain"] = cams
        if "skipped" in cams:
            say(f"report CAMs: {cams['skipped']}")
    if config.prune_after > 0:
        summary["pruning"] = prune_after_training(
            unwrap(model.model),
            model.card,
            bundle,
            model.task,
            model.pipeline,
            parts.device,
            output.path,
            config,
            train_mode=train_mode_of(config),
            say=say,
        )
    output.close()  # every checkpoint and state file is on disk before the summary says the run is complete
    output.finish(summary, parts.timeline.epoch, hparams=config.to_dict())
    say("test: " + " ".join(f"{k} {v:.4f}" for k, v in summary["test"].items()))
    best = parts.best
    say(
        f"best {parts.monitor.metric} {best.best_value} at epoch {best.best_epoch}; "
        f"{parts.timeline.epoch} epochs in {summary['wall_time_s']:.1f}s"
    )
    say(f"run folder: {output.path}")
    return summary


def _test_net(model: RunModel, parts: LoopParts, best_file: Path | None) -> nn.Module:
    """The model the test split sees: the run's own with the best weights restored, the tensors the best
    checkpoint was written from; the file itself should the two name different epochs."""
    if best_file is None or _holds_best_epoch(best_file, parts.best):
        return model.model
    try:
        net = load_model(best_file, parts.device)[0]
    except UserError:  # damaged: reported, and kept as it is, by _settle_best_file
        return model.model
    return net.to(memory_format=torch.channels_last) if parts.step.channels_last else net


def _holds_best_epoch(best_file: Path, best) -> bool:
    """Whether the best checkpoint's file is of the epoch whose weights ``best`` (BestWeights) holds."""
    return best.has_best and f"epoch={best.best_epoch}_" in best_file.name


def checkpoint_damage(path: Path) -> str | None:
    """What is wrong with the checkpoint file ``path`` (unreadable, fails its checksum), or None."""
    try:
        read_tensors(path)
    except UserError as err:
        return str(err)
    return None


def _settle_best_file(
    damage: str | None, best_file: Path, card: ModelCard, parts: LoopParts, threshold: float | None
) -> None:
    """After the test: a damaged best file is rewritten from the best weights the run holds (those the
    test used); the decision threshold goes into its card."""
    if damage is not None:
        say(f"warning: {damage}")
        if not _rewrite_best(best_file, card, parts):
            return
    if threshold is not None:
        update_card(best_file, threshold=threshold)


def _evaluate_test(config, data: RunData, model: RunModel, parts: LoopParts, net: nn.Module):
    """Evaluate ``net`` (the model with its best weights restored) on the test split."""
    loader = make_loader(config, data.bundle, data.bundle.test, train=False, device=parts.device)
    step = StepOptions(config.amp, config.channels_last)
    return run_evaluation(net, model.task, model.pipeline, parts.device, loader, step)


def _rewrite_best(best_file: Path, card: ModelCard, parts: LoopParts) -> bool:
    """Replace a damaged best checkpoint with the best weights the run holds (restored from its training
    state on resume), when they are that file's epoch; whether it was rewritten."""
    best = parts.best
    if not _holds_best_epoch(best_file, best):
        say(f"tested the best weights of epoch {best.best_epoch} held in memory; {best_file} stays as it is")
        return False
    tensors = {k: v.contiguous() for k, v in best.state_tensors().items()}
    save_weights(
        best_file, tensors, checkpoint_card(card, best.best_epoch, parts.monitor.metric, best.best_score)
    )
    say(f"rewrote {best_file} from the best weights of epoch {best.best_epoch} held in the training state")
    return True
