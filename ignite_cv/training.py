"""``fit(config)``: a training run from data to run folder, read top to bottom.

data → task → batch pipeline → model → engines → handlers → phases → best model → test → summary.

Runs in every process of a distributed job (``idist.Parallel``: plain, spawned with
``--nproc-per-node``, or under ``torchrun``); rank 0 alone writes the run folder and prints.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from dataclasses import dataclass
from pathlib import Path

import ignite.distributed as idist
import torch
from ignite.engine import Engine, Events
from ignite.handlers import EarlyStopping
from ignite.utils import manual_seed
from torch import nn

from ignite_cv.data.loaders import build_loader, fits_on_device, materialize
from ignite_cv.data.sources import load_data
from ignite_cv.data.splits import DataBundle
from ignite_cv.data.stats import fingerprint_split
from ignite_cv.engine import StepOptions, create_evaluator, create_trainer, make_grad_scaler
from ignite_cv.handlers.best_weights import BestWeights
from ignite_cv.handlers.checkpoint import (
    SafetensorsSaver,
    attach_model_checkpoints,
    best_checkpoint,
    last_checkpoint,
    top_checkpoint_path,
)
from ignite_cv.handlers.history import MetricsHistory, epoch_row
from ignite_cv.handlers.lr_schedule import ScheduleOptions, attach_lr_schedule
from ignite_cv.handlers.monitor import Monitor
from ignite_cv.handlers.nonfinite import NonFiniteLossError, TerminateOnNonFiniteLoss
from ignite_cv.handlers.predictions import PredictionCollector
from ignite_cv.handlers.progress import ProgressReporter
from ignite_cv.handlers.tensorboard import RunTensorBoard, ValidationImageGrid
from ignite_cv.metrics import evaluation_metrics, scalar_metrics, training_metrics
from ignite_cv.models import build_model, model_arg_names
from ignite_cv.models.freezing import check_mode, set_train_mode
from ignite_cv.phases import Phase, make_optimizer, plan_phases
from ignite_cv.pipeline.augment import build_augmentation
from ignite_cv.pipeline.batch_pipeline import BatchPipeline
from ignite_cv.pipeline.normalize import build_normalizer, resolve_normalization
from ignite_cv.profiling import attach_run_profiler
from ignite_cv.pruning import check_prune_after, prune_after_training
from ignite_cv.resume import (
    PhaseState,
    SkippingLoader,
    capture,
    completed_epochs,
    restore_phase,
    restore_shared,
    resumed_config,
    state_folder,
)
from ignite_cv.run_folder import RunFolder
from ignite_cv.task import ClassificationTask
from ignite_cv.training_state import TrainingState, latest_valid_state, snapshot_state, write_state
from ignite_cv.utils.allocator import tune_cpu_allocator
from ignite_cv.utils.background_writer import BackgroundWriter
from ignite_cv.utils.devices import resolve_device
from ignite_cv.utils.errors import UserError
from ignite_cv.utils.modules import unwrap
from ignite_cv.weights import ModelCard, load_model

#: Decoded data up to this size is kept in host memory as one uint8 tensor (no DataLoader per epoch).
HOST_MEMORY_BUDGET = 4 * 2**30
#: Folder inside --output-dir caching training-split statistics by fingerprint (shared by runs).
STATS_CACHE = ".stats-cache"


def fit(config, on_phase_end=None) -> dict | None:
    """Train as ``config`` says; returns the summary (in the process that wrote it; else None).

    ``on_phase_end(model, phase_index, phase_result)``, if given, is called in every process after
    each phase with the bare (unwrapped) model, e.g. to inspect or export per-rank weights.
    """
    backend = _backend(config)
    nproc = config.nproc_per_node if config.nproc_per_node > 1 else None
    if config.resume:
        config = resumed_config(config)
    result: dict = {}
    with idist.Parallel(backend=backend, nproc_per_node=nproc) as parallel:
        parallel.run(_fit_in_process, config, result, on_phase_end)
    return result.get("summary")


def leave_together() -> None:
    """Hold every rank until all are done (no-op in one process). A rank that tore its gloo process
    group down while rank 0 was still writing the report aborted now and then ("terminate called
    without an active exception", about one torchrun run in 16 on 2 CPU cores)."""
    if idist.get_world_size() > 1:
        idist.barrier()


def _backend(config) -> str | None:
    under_torchrun = "TORCHELASTIC_RUN_ID" in os.environ or "LOCAL_RANK" in os.environ
    if under_torchrun and config.nproc_per_node > 0:
        raise UserError(
            f"--nproc-per-node {config.nproc_per_node} was given inside a torchrun job",
            "let torchrun start the processes (torchrun --nproc_per_node N ...) and drop --nproc-per-node",
        )
    distributed = config.nproc_per_node > 1 or int(os.environ.get("WORLD_SIZE", "1")) > 1
    if not distributed:
        return None
    if config.backend != "auto":
        return config.backend
    return "nccl" if torch.cuda.is_available() and config.device != "cpu" else "gloo"


@dataclass
class RunContext:
    """What the phases share: the model, data loaders, engines, handlers and the run's timeline."""

    config: object
    device: torch.device
    data: DataBundle
    task: ClassificationTask
    pipeline: BatchPipeline
    model: nn.Module
    card: ModelCard
    train_loader: object
    val_loader: object
    evaluator: Engine
    monitor: Monitor
    best: BestWeights
    run: RunFolder | None
    board: RunTensorBoard | None
    history: MetricsHistory | None
    epoch: int = 0
    iteration: int = 0
    phase_results: list = dataclasses.field(default_factory=list)
    #: Writes checkpoint and training-state files off the training thread (rank 0).
    writer: BackgroundWriter = dataclasses.field(default_factory=BackgroundWriter)


def _fit_in_process(local_rank: int, config, result: dict, on_phase_end=None) -> None:
    rank, world = idist.get_rank(), idist.get_world_size()
    start = time.perf_counter()
    tune_cpu_allocator()  # before the first large tensor: see ignite_cv/allocator.py
    check_prune_after(config)
    if config.prune_after > 0 and world > 1:
        raise UserError(
            "--prune-after runs in one process", "run it without torchrun, or prune later with tools/prune.py"
        )
    device = resolve_device(config.device)
    manual_seed(config.seed)
    if config.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=False)
        torch.backends.cudnn.benchmark = False

    # --- data -------------------------------------------------------------------------------------
    data = load_data(config, config.seed)
    data = _place_data(data, config, device)
    _per_process_batch(config.batch_size, world)  # a batch smaller than the world fails here, early
    train_loader = SkippingLoader(make_loader(config, data, data.train, train=True, device=device))
    val_loader = make_loader(config, data, data.val, train=False, device=device)

    _say(
        f"data: {data.name}, {len(data.train)} train / {len(data.val)} val / {len(data.test)} test, "
        f"{data.num_classes} classes, {data.channels}×{data.image_size[0]}×{data.image_size[1]}"
        + (f"; skipped {len(data.skipped)} unreadable files" if data.skipped else "")
    )

    # --- task, batch pipeline, model ---------------------------------------------------------------
    task = ClassificationTask(data.num_classes, label_smoothing=config.label_smoothing)
    normalization = resolve_normalization(
        config,
        data.channels,
        _uint8_batches(config, data),
        fingerprint_split(
            data.train,
            decode={
                "size": list(data.image_size),
                "channels": data.channels,
                "center_crop": config.center_crop,
            },
        ),
        Path(config.output_dir) / STATS_CACHE,
    )
    augmentation = build_augmentation(config, data.channels, data.image_size)
    if augmentation is not None and hasattr(augmentation, "reseed"):
        augmentation.reseed(config.seed + rank)  # each rank augments differently
    pipeline = BatchPipeline(build_normalizer(normalization), augmentation).to(device)
    model, card = _build_model(config, data, task, normalization)
    model = model.to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)

    # --- run folder (rank 0), only once every input has been checked --------------------------------
    state = None
    if config.resume:
        state = latest_valid_state(state_folder(Path(config.resume)), warn=_say)
        run = RunFolder(config.resume) if rank == 0 else None
        if run is not None:
            MetricsHistory(run.history).truncate(completed_epochs(state))
        _say(f"resuming {config.resume} from {state.path.name} (epoch {completed_epochs(state)} completed)")
    else:
        run = RunFolder.create(config.output_dir, config.recipe, config.run_name) if rank == 0 else None
    if run is not None and state is None:
        run.write_json("config.json", config.to_dict())
        if data.skipped:
            run.write_text("data_skipped.txt", "".join(f"{line}\n" for line in data.skipped))
            _say(f"unreadable files skipped: {len(data.skipped)}, listed in {run.path / 'data_skipped.txt'}")

    # --- evaluator, monitor, shared handlers -------------------------------------------------------
    step_options = StepOptions(config.amp, config.channels_last, config.grad_clip, config.accumulate_steps)
    evaluator = create_evaluator(
        model, task, pipeline, device, step_options, evaluation_metrics(task, device)
    )
    monitor = Monitor.resolve(config.monitor, config.monitor_mode, task.binary)
    best = BestWeights(model, monitor)
    ctx = RunContext(
        config,
        device,
        data,
        task,
        pipeline,
        model,
        card,
        train_loader,
        val_loader,
        evaluator,
        monitor,
        best,
        run,
        None,
        None,
    )
    best.attach(evaluator, lambda: ctx.epoch)
    if run is not None:
        saver = SafetensorsSaver(run.checkpoints, card, lambda: ctx.epoch, ctx.writer)
    else:
        saver = _NullSaver()
    best_ckpt = best_checkpoint(model, saver, monitor, config.keep_best, lambda: ctx.epoch)
    last_ckpt = last_checkpoint(model, saver, lambda: ctx.epoch)
    if run is not None:
        ctx.board = RunTensorBoard(run.tensorboard, lambda: ctx.epoch, lambda: ctx.iteration)
        ctx.board.add_text("config", config.to_dict())
        ctx.history = MetricsHistory(run.history, ctx.writer)
        if config.image_grid_every > 0:
            _attach_image_grid(ctx, config.image_grid_every)

    if state is not None:
        restore_shared(ctx, state, best_ckpt, last_ckpt)
        start -= state.meta["run"]["elapsed_s"]

    # --- phases --------------------------------------------------------------------------------------
    total = _count_params(model)
    try:
        for index, phase in enumerate(plan_phases(config, model)):
            if state is not None and index < state.meta["phase"]:
                continue
            resume_here = state if state is not None and index == state.meta["phase"] else None
            ctx.phase_results.append(_run_phase(ctx, phase, index, best_ckpt, last_ckpt, resume_here, start))
            if on_phase_end is not None:
                on_phase_end(unwrap(ctx.model), index, ctx.phase_results[-1])
            if ctx.phase_results[-1].get("stopped_by") == "nonfinite":
                break
    except NonFiniteLossError as err:
        raise UserError(
            str(err),
            "lower --lr, use --grad-clip, or --amp none; the last good checkpoint is in "
            + (str(run.checkpoints) if run else "the run folder"),
        ) from None
    finally:
        ctx.writer.close()

    # --- best model → test split --------------------------------------------------------------------
    best.restore()
    best_file = top_checkpoint_path(best_ckpt) if run is not None else None
    test_metrics, test_predictions = _evaluate_test(ctx, best_file)
    summary = {
        "run_dir": str(run.path) if run else None,
        "test": scalar_metrics(test_metrics),
        "test_confusion_matrix": test_metrics["confusion_matrix"].tolist(),
        "best": best.summary(),
        "best_checkpoint": str(best_file) if best_file else None,
        "epochs_run": ctx.epoch,
        "wall_time_s": round(time.perf_counter() - start, 2),
        "params": {"total": total[0], "trainable": total[1]},
        "phases": ctx.phase_results,
        "world_size": world,
        "data": {
            "train": len(data.train),
            "val": len(data.val),
            "test": len(data.test),
            "skipped": len(data.skipped),
        },
    }
    if run is not None:
        summary["report"] = _write_report(ctx, test_predictions)
        if config.prune_after > 0:
            summary["pruning"] = prune_after_training(
                unwrap(ctx.model),
                card,
                data,
                task,
                pipeline,
                device,
                run.path,
                config.prune_after,
                config.prune_finetune_epochs,
                config,
                train_mode=functools.partial(set_train_mode, train_bn=config.train_bn),
                say=_say,
            )
        run.write_json("summary.json", summary)
        ctx.board.add_text("summary", summary, ctx.epoch)
        ctx.board.close()
        result["summary"] = summary
        test_text = " ".join(f"{k} {v:.4f}" for k, v in summary["test"].items())
        _say(f"test: {test_text}")
        _say(
            f"best {monitor.metric} {best.best_value} at epoch {best.best_epoch}; {ctx.epoch} epochs in "
            f"{summary['wall_time_s']:.1f}s"
        )
        _say(f"run folder: {run.path}")
    leave_together()


def _run_phase(
    ctx: RunContext,
    phase: Phase,
    index: int,
    best_ckpt,
    last_ckpt,
    resume: TrainingState | None,
    run_start: float,
) -> dict:
    config = ctx.config
    phase_start = time.perf_counter()
    change = phase.prepare(unwrap(ctx.model)) if phase.prepare else {}
    train_model = idist.auto_model(unwrap(ctx.model), sync_bn=getattr(config, "sync_bn", False))
    optimizer = idist.auto_optim(
        make_optimizer(
            phase.optimizer, train_model.parameters(), phase.lr, phase.weight_decay, phase.momentum
        )
    )
    scaler = make_grad_scaler(ctx.device, config.amp)
    trainer = create_trainer(
        train_model,
        optimizer,
        ctx.task,
        ctx.pipeline,
        ctx.device,
        StepOptions(config.amp, config.channels_last, config.grad_clip, config.accumulate_steps),
        scaler,
        train_mode=functools.partial(set_train_mode, train_bn=getattr(config, "train_bn", False)),
    )
    if resume is not None:
        offset_epoch, offset_iter = resume.meta["offsets"]["epoch"], resume.meta["offsets"]["iteration"]
    else:
        offset_epoch, offset_iter = ctx.epoch, ctx.iteration

    def on_epoch_started(engine: Engine) -> None:
        ctx.epoch = offset_epoch + engine.state.epoch
        if hasattr(ctx.train_loader, "set_epoch"):
            ctx.train_loader.set_epoch(ctx.epoch)

    def on_iteration(engine: Engine) -> None:
        ctx.iteration = offset_iter + engine.state.iteration

    trainer.add_event_handler(Events.EPOCH_STARTED, on_epoch_started)
    trainer.add_event_handler(Events.ITERATION_STARTED, on_iteration)
    nonfinite = TerminateOnNonFiniteLoss(config.log_every, epoch_offset=offset_epoch)
    nonfinite.attach(trainer)
    for name, metric in training_metrics(ctx.device).items():
        metric.attach(trainer, name)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda _: ctx.evaluator.run(ctx.val_loader))
    steps = max(len(ctx.train_loader) // config.accumulate_steps, 1)
    schedule = ScheduleOptions(
        phase.scheduler,
        phase.lr,
        phase.epochs,
        steps,
        phase.lr_warmup_epochs,
        config.step_size,
        config.gamma,
        config.plateau_patience,
    )
    # Handlers this phase adds to the shared evaluator; removed when the phase ends.
    attached = attach_lr_schedule(schedule, optimizer, trainer, ctx.evaluator, ctx.monitor)
    handles = list(attached.evaluator_handles)
    stopper = None
    if phase.patience > 0:
        stopper = EarlyStopping(phase.patience, ctx.monitor.score, trainer)
        handles.append(ctx.evaluator.add_event_handler(Events.COMPLETED, stopper))
    if index == 0:
        attach_model_checkpoints(trainer, ctx.evaluator, best_ckpt, last_ckpt)
    else:
        trainer.add_event_handler(Events.EPOCH_COMPLETED, last_ckpt)
    epoch_start = {"t": 0.0}
    trainer.add_event_handler(Events.EPOCH_STARTED, lambda _: epoch_start.update(t=time.perf_counter()))
    lr_fn = lambda: optimizer.param_groups[0]["lr"]  # noqa: E731
    if ctx.run is not None:
        progress = ProgressReporter(
            config.epochs,
            lambda: ctx.epoch,
            config.log_every,
            lr_fn,
            phase=phase.name if phase.name != "train" else None,
        )
        handles += progress.attach(trainer, ctx.evaluator)
        handles += ctx.board.attach_phase(trainer, ctx.evaluator, optimizer, index)
        handles.append(
            ctx.evaluator.add_event_handler(
                Events.COMPLETED,
                lambda ev: ctx.history.append(
                    epoch_row(
                        ctx.epoch,
                        phase.name,
                        lr_fn(),
                        time.perf_counter() - epoch_start["t"],
                        trainer.state.metrics,
                        ev.state.metrics,
                    )
                ),
            )
        )
    phase_state = PhaseState(
        index, trainer, optimizer, scaler, attached.scheduler, stopper, offset_epoch, offset_iter
    )
    _attach_state_saver(ctx, trainer, phase_state, nonfinite, best_ckpt, last_ckpt, run_start)
    if resume is not None:
        ctx.train_loader.skip_next(restore_phase(ctx, phase_state, resume))
    elif change:
        _say(f"phase {phase.name}: {change}")
    finish_profile = None
    if config.profile and index == 0 and ctx.run is not None:
        finish_profile = attach_run_profiler(
            trainer,
            ctx.evaluator,
            ctx.run.path,
            ctx.device,
            config.profile_warmup_steps,
            config.profile_trace_steps,
            say=_say,
        )
    try:
        trainer.run(ctx.train_loader, max_epochs=phase.epochs)
    finally:
        for handle in handles:
            handle.remove()
        ctx.writer.wait()  # the phase's files are on disk before anything reads them or the run fails
    profile = finish_profile() if finish_profile is not None else None
    stopped_by = "early_stopping" if stopper is not None and trainer.should_terminate else "epochs"
    total, trainable = _count_params(unwrap(ctx.model))
    return {
        "name": phase.name,
        "epochs": trainer.state.epoch,
        "stopped_by": stopped_by,
        "wall_time_s": round(time.perf_counter() - phase_start, 2),
        "params": {"total": total, "trainable": trainable},
        **({"profile": profile} if profile is not None else {}),
        **change,
        **phase.info,
    }


def _attach_state_saver(ctx, trainer, phase_state, nonfinite, best_ckpt, last_ckpt, run_start) -> None:
    """Save a training state after each epoch (after evaluation and checkpoints: attached last) and
    every ``--checkpoint-every`` iterations; never one whose loss went non-finite."""
    if ctx.run is None:
        return
    folder = state_folder(ctx.run.path)

    def save(engine: Engine) -> None:
        nonfinite.check(engine)
        if not _weights_finite(ctx.model):  # diverged in this very step: keep the last good state
            return
        state = capture(ctx, phase_state, best_ckpt, last_ckpt, time.perf_counter() - run_start)
        ctx.writer.submit(write_state, folder, ctx.iteration, snapshot_state(state), ctx.config.keep_states)

    trainer.add_event_handler(Events.EPOCH_COMPLETED, save)
    if ctx.config.checkpoint_every > 0:
        every = Events.ITERATION_COMPLETED(every=ctx.config.checkpoint_every)
        trainer.add_event_handler(every, lambda e: None if _at_epoch_end(e) else save(e))


def _weights_finite(model: nn.Module) -> bool:
    """One host sync: whether every parameter is finite (a NaN or inf makes its sum non-finite; summing
    allocates nothing per element, unlike ``isfinite``)."""
    sums = [p.detach().sum() for p in unwrap(model).parameters()]
    return bool(torch.stack(sums).sum().isfinite()) if sums else True


def _at_epoch_end(engine: Engine) -> bool:
    return engine.state.iteration % engine.state.epoch_length == 0


def _evaluate_test(ctx: RunContext, best_file: Path | None) -> tuple[dict, dict]:
    """Evaluate the best checkpoint (reloaded from its file when there is one) on the test split."""
    model = ctx.model
    if best_file is not None:
        model, _ = load_model(best_file, ctx.device)
    loader = make_loader(ctx.config, ctx.data, ctx.data.test, train=False, device=ctx.device)
    options = StepOptions(ctx.config.amp, ctx.config.channels_last)
    tester = create_evaluator(
        model, ctx.task, ctx.pipeline, ctx.device, options, evaluation_metrics(ctx.task, ctx.device)
    )
    collector = PredictionCollector()
    collector.attach(tester)
    tester.run(loader)
    return tester.state.metrics, collector.gathered(ctx.task.num_classes)


def _write_report(ctx: RunContext, predictions) -> str:
    from ignite_cv.report import write_test_report

    scores, labels, images = predictions
    probs = scores.softmax(dim=1).numpy()
    y = labels.numpy()
    write_test_report(
        ctx.run.report,
        y,
        probs,
        ctx.data.class_names,
        images,
        tb_writer=ctx.board.writer,
        global_step=ctx.epoch,
    )
    return str(ctx.run.report)


def _attach_image_grid(ctx: RunContext, every: int) -> None:
    images, labels = next(iter(ctx.val_loader))
    images, labels = images[:16], labels[:16]

    @torch.inference_mode()
    def predict(batch: torch.Tensor) -> torch.Tensor:
        ctx.model.eval()
        logits = ctx.model(ctx.pipeline(batch.to(ctx.device), augment=False))
        return ctx.task.class_scores(logits).argmax(dim=1)

    ValidationImageGrid(predict, images, labels, ctx.data.class_names, ctx.board, every).attach(ctx.evaluator)


def _place_data(data: DataBundle, config, device: torch.device) -> DataBundle:
    """Where the uint8 splits live: decoded once into host memory when they fit (no per-epoch JPEG
    decoding), and on the model's device when it is a GPU with room (``--data-on-device``)."""
    splits = [data.train, data.val, data.test]
    mode = config.data_on_device
    shape = (data.channels, *data.image_size)
    decode = mode == "yes" or fits_on_device(splits, "cpu", HOST_MEMORY_BUDGET, sample_shape=shape)
    if mode != "no" and decode:
        splits = [
            s
            if s.in_memory
            else materialize(s, data.image_size, data.channels, config.center_crop, config.workers)
            for s in splits
        ]
    movable = device.type != "cpu" and mode != "no" and all(s.in_memory for s in splits)
    if movable and (mode == "yes" or fits_on_device(splits, device)):
        splits = [
            dataclasses.replace(s, images=s.images.to(device), labels=s.labels.to(device)) for s in splits
        ]
    return dataclasses.replace(data, train=splits[0], val=splits[1], test=splits[2])


def make_loader(
    config,
    data: DataBundle,
    split,
    *,
    train: bool,
    device: torch.device,
    batch_size: int | None = None,
    shard: bool = True,
):
    """The loader of one split for this process: its shard (unless ``shard=False``), uint8 batches.

    In-memory splits are iterated where their tensors live (the device, with ``--data-on-device``);
    file splits are decoded in DataLoader workers and pinned for non-blocking copies to a GPU.
    """
    rank, world = (idist.get_rank(), idist.get_world_size()) if shard else (0, 1)
    return build_loader(
        split,
        batch_size=batch_size or _per_process_batch(config.batch_size, world),
        train=train,
        device=split.images.device if split.in_memory else torch.device("cpu"),
        seed=config.seed,
        rank=rank,
        world_size=world,
        workers=config.workers,
        pin_memory=device.type == "cuda",
        image_size=data.image_size,
        channels=data.channels,
        center_crop=config.center_crop,
    )


def _uint8_batches(config, data: DataBundle):
    """A factory of uint8 batches over the whole training split (every rank sees all of it), for
    normalization statistics; never validation or test data."""

    def batches():
        loader = make_loader(
            config,
            data,
            data.train,
            train=False,
            device=torch.device("cpu"),
            batch_size=max(config.batch_size, 256),
            shard=False,
        )
        for images, _ in loader:
            yield images

    return batches


def _per_process_batch(global_batch: int, world: int) -> int:
    if global_batch < world:
        raise UserError(
            f"--batch-size {global_batch} is smaller than the number of processes ({world})",
            "raise --batch-size; it is the global batch, divided among processes",
        )
    return global_batch // world


def _build_model(config, data: DataBundle, task: ClassificationTask, normalization: dict):
    """The registry model with its initial weights (checked against the transfer mode) and its card."""
    arch_args = {
        name: getattr(config, name) for name in model_arg_names(config.model) if hasattr(config, name)
    }
    arch_args = {k: list(v) if isinstance(v, tuple) else v for k, v in arch_args.items()}
    model = build_model(config.model, data.channels, data.image_size, task.num_outputs, **arch_args)
    mode, weights = getattr(config, "mode", "scratch"), getattr(config, "weights", "none")
    check_mode(model, mode, weights, getattr(config, "unfreeze", "all"))
    if mode != "scratch" and weights == "none":
        _say(f"warning: --mode {mode} with --weights none trains on a random frozen backbone (a baseline)")
    report = _load_initial_weights(model, config, data.channels)
    if report:
        _say(report)
    card = ModelCard(
        arch=config.model,
        arch_args=arch_args,
        class_names=list(data.class_names),
        in_channels=data.channels,
        image_size=list(data.image_size),
        num_outputs=task.num_outputs,
        normalization=normalization,
    )
    return model, card


def _load_initial_weights(model: nn.Module, config, channels: int) -> str | None:
    weights = getattr(config, "weights", "none")
    if weights in ("", "none"):
        return None
    from ignite_cv.models.pretrained import load_pretrained

    return load_pretrained(model, config.model, weights, channels)


def _count_params(model: nn.Module) -> tuple[int, int]:
    params = list(unwrap(model).parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def _say(message: str) -> None:
    if idist.get_rank() == 0:
        print(message, flush=True)


class _NullSaver(SafetensorsSaver):
    """Ranks other than 0 never write; Ignite still calls the saver only on rank 0, this is a guard."""

    def __init__(self) -> None:  # noqa: D107
        pass

    def __call__(self, checkpoint, filename, metadata=None) -> None:
        return None

    def remove(self, filename: str) -> None:
        return None
