"""Evaluate a saved checkpoint on a data split: the run's metrics and test report, from the file alone.

The model, its class names, input size and channels, and its input normalization all come from the
checkpoint's :class:`~ignite_cv.weights.ModelCard`; the data set is loaded as in training
(:func:`ignite_cv.data.sources.load_data`) and shaped like the model's input. Evaluation uses the
run's own pieces — :func:`ignite_cv.engine.create_evaluator` with
:func:`ignite_cv.metrics.evaluation_metrics`, the :class:`~ignite_cv.pipeline.batch_pipeline.BatchPipeline`
without augmentation, and :func:`ignite_cv.report.write_test_report` — so its numbers are the ones a
run reports for the same model and split.

Distributed (several processes under ``torchrun``, or ``nproc_per_node`` spawned here): every process
evaluates an unpadded strided shard of the split (each sample exactly once), the metrics reduce
through Ignite, the predictions are gathered (``idist.all_gather``) into the split's own order, and
rank 0 alone writes the report and returns the result.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ignite.distributed as idist
import torch
from ignite.engine import Engine

from ignite_cv.config import ComputeOptions, DistributedOptions, SeedOptions
from ignite_cv.data.classes import reorder_classes
from ignite_cv.data.options import DataOptions
from ignite_cv.data.placement import make_loader
from ignite_cv.data.sources import load_data
from ignite_cv.engine import StepOptions, create_evaluator
from ignite_cv.handlers.predictions import PredictionCollector
from ignite_cv.metrics import evaluation_metrics, scalar_metrics
from ignite_cv.pipeline.batch_pipeline import BatchPipeline
from ignite_cv.pipeline.normalize import build_normalizer
from ignite_cv.roc import roc_auc
from ignite_cv.run_folder import RunFolder
from ignite_cv.task import ClassificationTask
from ignite_cv.utils.atomic import write_json_atomic
from ignite_cv.utils.devices import resolve_device
from ignite_cv.utils.distributed import choose_backend, leave_together, spawn_arguments
from ignite_cv.utils.errors import UserError
from ignite_cv.utils.options import option
from ignite_cv.weights import load_model

SPLITS = ("test", "val", "train")

#: File of the metrics (scalars, per-class values, confusion matrix) beside the report files.
METRICS_FILE = "metrics.json"


@dataclass
class EvaluationOptions(DistributedOptions, SeedOptions, ComputeOptions, DataOptions):
    """The data options of training plus how to evaluate (``tools/evaluate.py``'s flags)."""

    image_size: int = option(0, "square size in pixels (0 = the checkpoint's)", minimum=0)
    channels: int = option(0, "image channels: 1 or 3 (0 = the checkpoint's)", choices=(0, 1, 3))
    batch_size: int = option(256, "global evaluation batch size (divided among processes)", minimum=1)
    split: str = option("test", "split to evaluate", choices=SPLITS)
    output_dir: str = option(
        "",
        "report folder (default: <checkpoint's folder>/../report-<split>-<dataset>, -2, -3... if it exists)",
    )
    threads: int = option(0, "CPU threads for torch (0 = torch's default)", minimum=0)


def run_evaluation(
    model,
    task,
    pipeline,
    device: torch.device,
    loader,
    step: StepOptions | None = None,
    collect: bool = True,
    keep_images: bool = True,
) -> tuple[dict, tuple | None]:
    """Evaluate ``model`` on ``loader`` (no augmentation) with the run's metrics; with ``collect``, also
    the predictions gathered over all ranks ``(scores, labels, uint8 images)`` for a report (images
    None without ``keep_images``).

    The one evaluation of the project: the test stage of a run, ``tools/evaluate.py`` and the pruning
    workflow's before/after all call it, so their numbers agree for the same model and split.
    """
    evaluator = create_evaluator(
        model, task, pipeline, device, step or StepOptions(), evaluation_metrics(task, device)
    )
    collector = PredictionCollector(keep_images) if collect else None
    if collector is not None:
        collector.attach(evaluator)
    evaluator.run(loader)
    return evaluator.state.metrics, collector.gathered(task.num_classes) if collector is not None else None


def split_probabilities(
    model,
    task,
    pipeline,
    device: torch.device,
    loader,
    n: int,
    step: StepOptions | None = None,
    keep_images: bool = False,
) -> tuple[dict, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """:func:`run_evaluation` of a split of ``n`` samples, with its predictions in the split's own order:
    ``(metrics, probabilities float32 (n, C), labels (n,), uint8 images or None)`` on the CPU of every
    rank (collective)."""
    metrics, (scores, labels, images) = run_evaluation(
        model, task, pipeline, device, loader, step, keep_images=keep_images
    )
    order = _dataset_order(n, idist.get_world_size())
    images = _restore_order(images, order) if images is not None else None
    return metrics, _restore_order(scores, order).softmax(dim=1), _restore_order(labels, order), images


def probability_metrics(
    probabilities: torch.Tensor, labels: torch.Tensor, task, device: torch.device
) -> dict:
    """The evaluation metrics (:func:`ignite_cv.metrics.evaluation_metrics`, so the same names and
    definitions as a model's evaluation) of given class probabilities ``(N, C)``: an ensemble's mean,
    out-of-fold predictions, a classic classifier's.

    Collective: call it in every process with the same arrays; each rank feeds its strided share to
    Ignite's metrics, which reduce over the ranks, so every row counts once and every rank gets all.
    The loss is the cross-entropy of the probabilities (their logits are recovered in float64); the
    ROC-AUC is :func:`ignite_cv.roc.roc_auc` of the probabilities as given.
    """
    rank, world = idist.get_rank(), idist.get_world_size()
    probs = probabilities.detach().to("cpu", torch.float64)[rank::world]
    targets = labels.detach().to("cpu", torch.int64)[rank::world]
    logs = probs.clamp_min(torch.finfo(torch.float64).tiny).log()
    logits = (logs[:, 1:] - logs[:, :1]) if task.binary else logs  # binary: one logit, log(p1 / p0)
    batch = (logits.float().to(device), targets.to(device))
    engine = Engine(lambda _, b: {"logits": b[0], "scores": task.class_scores(b[0]), "y": b[1]})
    for name, metric in evaluation_metrics(task, device).items():
        metric.attach(engine, name)
    engine.run([batch], max_epochs=1)
    metrics = dict(engine.state.metrics)
    # The ROC-AUC of the probabilities themselves (the metric's float32 softmax of recovered logits can
    # break near-ties differently); every rank holds all rows, so this is the report's number exactly.
    metrics["roc_auc"] = roc_auc(labels.detach().cpu().numpy(), probabilities.detach().float().cpu().numpy())
    return metrics


def evaluate_checkpoint(
    path: str | Path,
    options: EvaluationOptions,
    say: Callable[[str], None] | None = None,
) -> dict[str, Any] | None:
    """Evaluate the checkpoint at ``path`` on ``options.split`` and write the report into a new folder.

    ``options.output_dir``: the report folder (default :func:`default_output_dir`); when it exists, ``-2``,
    ``-3``... is appended, so nothing is overwritten. ``say`` prints (rank 0 only) a first line, then the
    metrics and the report folder (:func:`format_result`). Runs in every process of a distributed job.
    Returns, in the process that wrote the report, the metrics dict also saved as ``metrics.json``
    (with ``"output_dir"``); None in the others and in the caller of spawned processes
    (``nproc_per_node``): read ``metrics.json`` there.

    Raises:
        UserError: an unreadable or foreign checkpoint, a data set whose classes or image shape do
            not fit the checkpoint, bad options.
    """
    if options.split not in SPLITS:
        raise UserError(f"unknown split {options.split!r}", f"choose one of: {', '.join(SPLITS)}")
    say = say or functools.partial(print, flush=True)
    result: dict[str, Any] = {}
    backend = choose_backend(options.nproc_per_node, options.backend, options.device)
    spawn = spawn_arguments(options.nproc_per_node) if backend is not None else {}
    with idist.Parallel(backend=backend, **spawn) as parallel:
        parallel.run(_evaluate_in_process, Path(path), options, say, result)
    return result.get("metrics")


def default_output_dir(checkpoint: str | Path, split_name: str, dataset: str) -> Path:
    """``<checkpoint's folder>/../report-<split>-<dataset>``: beside ``checkpoints/`` in a run folder."""
    return Path(checkpoint).resolve().parent.parent / f"report-{split_name}-{dataset}"


def _evaluate_in_process(local_rank: int, path: Path, options: EvaluationOptions, say, result: dict) -> None:
    rank, world = idist.get_rank(), idist.get_world_size()
    split_name = options.split
    start = time.perf_counter()
    device = resolve_device(options.device)
    model, card = load_model(path, device)  # a foreign file fails here, before any data is read
    data = load_matching_data(options, card)
    if list(data.image_size) != list(card.image_size):
        _check_input_size(model, card, data.channels, data.image_size, device)
        if rank == 0:
            say(
                f"note: evaluating at {data.image_size[0]}×{data.image_size[1]}; the model was trained at "
                f"{card.image_size[0]}×{card.image_size[1]}"
            )
    if list(data.class_names) != list(card.class_names) and sorted(data.class_names) == sorted(
        card.class_names
    ):
        data = reorder_classes(data, card.class_names)  # e.g. a run's --positive-class moved one last
    if rank == 0 and list(data.class_names) != list(card.class_names):
        say(
            f"warning: the data's class names {_short(data.class_names)} differ from the checkpoint's "
            f"{_short(card.class_names)}; class i is reported under the checkpoint's name"
        )
    task = ClassificationTask(card.num_classes)
    if task.num_outputs != card.num_outputs:
        raise UserError(
            f"{path} has {card.num_outputs} outputs for {card.num_classes} classes",
            "use a checkpoint written by ignite_cv",
        )
    split = getattr(data, split_name)
    loader = split_loader(options, data, split_name, device, world)
    pipeline = BatchPipeline(build_normalizer(card.normalization)).to(device)  # no augmentation
    if rank == 0:
        say(
            f"evaluating {path} ({card.arch}) on {data.name} {split_name}: {len(split)} images, "
            f"{data.num_classes} classes, {data.channels}×{data.image_size[0]}×{data.image_size[1]}"
            + (f", {world} processes" if world > 1 else "")
        )
    # The gathering is collective: every rank runs it.
    metrics, (scores, labels, images) = run_evaluation(
        model, task, pipeline, device, loader, StepOptions.from_config(options)
    )
    if rank == 0:
        order = _dataset_order(len(split), world)
        scores, labels = _restore_order(scores, order), _restore_order(labels, order)
        images = _restore_order(images, order) if images is not None else None
        result["metrics"] = _write_results(
            path, options, data, card, metrics, scores, labels, images, start, world
        )
        say(format_result(result["metrics"]))
    leave_together()


def format_result(result: dict[str, Any]) -> str:
    """The scalar metrics, one per line (6 decimals), then the report folder."""
    lines = [f"{result['split']} metrics ({result['n']} images):"]
    lines += [f"  {name:<16} {value:.6f}" for name, value in result["metrics"].items()]
    lines.append(f"report folder: {result['output_dir']}")
    return "\n".join(lines)


def load_matching_data(options: EvaluationOptions, card, same_classes: bool = True):
    """The data set shaped like the checkpoint's input (its size and channels unless options say
    otherwise), with the checkpoint's number of classes (unless not ``same_classes``: features of a
    backbone for another task)."""
    height, width = card.image_size
    if not options.image_size and height != width:
        raise UserError(
            f"the checkpoint expects {height}×{width} images and data sets are resized to squares",
            "pass --image-size if the model accepts square images",
        )
    channels = options.channels or card.in_channels
    if channels != card.in_channels:
        raise UserError(
            f"--channels {channels} but the checkpoint's model takes {card.in_channels}-channel images",
            f"drop --channels or pass {card.in_channels}",
        )
    data_options = dataclasses.replace(options, image_size=options.image_size or height, channels=channels)
    data = load_data(data_options, options.seed)
    if same_classes and data.num_classes != card.num_classes:
        raise UserError(
            f"the checkpoint has {card.num_classes} classes but --dataset {options.dataset} has "
            f"{data.num_classes}",
            "evaluate on the data set the model was trained on",
        )
    return data


def stored_threshold(card) -> float | None:
    """The decision threshold a two-class checkpoint's card stores (None: several classes).

    Cards of ignite_cv runs keep the positive class at index 1 (:mod:`ignite_cv.data.classes`); a card
    naming the other one would need its probabilities swapped, which no run writes: refused."""
    from ignite_cv.inference.decision import DecisionRule

    rule = DecisionRule.from_card(card)
    if not rule.binary:
        return None
    if rule.positive_index != 1:
        raise UserError(
            f"the checkpoint's positive class {rule.positive_class!r} is not its class 1",
            "re-save it with the positive class last, as ignite_cv runs do",
        )
    return rule.threshold


def checkpoint_center_crop(checkpoint: str | Path, card, default: bool) -> bool:
    """Whether a checkpoint's model was trained on centre-cropped images: its card's record, else its
    run's ``config.json`` (a checkpoint in ``<run>/checkpoints/``), else ``default`` (the flag)."""
    if "center_crop" in (card.extra or {}):
        return bool(card.extra["center_crop"])
    from ignite_cv.inference.model_info import read_json, run_folder_of

    run = run_folder_of(checkpoint)
    config = read_json(run / "config.json") if run else None
    return bool(config["center_crop"]) if config and "center_crop" in config else default


def _check_input_size(model, card, channels: int, size, device: torch.device) -> None:
    """A model trained at another size may not take ``size`` images (a fixed-size classifier): one
    forward pass of a blank image tells, before any data is evaluated."""
    try:
        with torch.inference_mode():
            model(torch.zeros(1, channels, *size, device=device))
    except RuntimeError as err:
        trained = f"{card.image_size[0]}×{card.image_size[1]}"
        raise UserError(
            f"the checkpoint's {card.arch} was trained at {trained} and cannot take {size[0]}×{size[1]} "
            f"images ({str(err).strip().splitlines()[0]})",
            f"drop --image-size or pass {card.image_size[0]}",
        ) from None


def _short(names) -> str:
    names = [str(n) for n in names]
    return "[" + ", ".join(names[:4]) + (", ..." if len(names) > 4 else "") + "]"


def _dataset_order(n: int, world: int) -> torch.Tensor:
    """Split indices in the order of the gathered shards: rank 0's ``0, w, 2w...``, then rank 1's..."""
    return torch.cat([torch.arange(rank, n, world) for rank in range(world)])


def _restore_order(values: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Put gathered per-sample values back into the split's own order (independent of the world size)."""
    if len(values) != len(order):
        raise RuntimeError(f"gathered {len(values)} predictions for {len(order)} samples")
    out = torch.empty_like(values)
    out[order] = values
    return out


def _write_results(
    path: Path,
    options: EvaluationOptions,
    data,
    card,
    metrics: dict,
    scores: torch.Tensor,
    labels: torch.Tensor,
    images: torch.Tensor | None,
    start: float,
    world: int,
) -> dict[str, Any]:
    from ignite_cv.report import write_test_report  # matplotlib and scikit-learn load only here

    split_name = options.split
    target = (
        Path(options.output_dir)
        if options.output_dir
        else default_output_dir(path, split_name, options.dataset)
    )
    folder = RunFolder.create(target.parent, "evaluate", target.name).path  # never an existing folder
    names = list(card.class_names)
    threshold = stored_threshold(card)
    report = write_test_report(
        folder,
        labels.numpy(),
        scores.softmax(dim=1).numpy(),
        names,
        images,
        split_name=split_name,
        threshold=threshold,
    )
    per_class = {
        key: dict(zip(names, metrics[key].tolist()))
        for key in ("precision", "recall", "f1")
        if key in metrics
    }
    out = {
        "checkpoint": str(path),
        "arch": card.arch,
        "dataset": options.dataset,
        "data_root": options.data_root,
        "data": data.name,
        "split": split_name,
        "n": len(labels),
        "class_names": names,
        "metrics": scalar_metrics(metrics),
        "per_class": per_class,
        "confusion_matrix": metrics["confusion_matrix"].tolist(),
        "report": report,
        "threshold": threshold,
        "world_size": world,
        "wall_time_s": round(time.perf_counter() - start, 2),
        "output_dir": str(folder),
    }
    if data.class_names and list(data.class_names) != names:
        out["data_class_names"] = list(data.class_names)
    write_json_atomic(folder / METRICS_FILE, out, strict=True)
    return out


def split_loader(options, data, split_name: str, device: torch.device, world: int):
    """This process's evaluation loader over ``split_name`` of ``data``: ``--batch-size`` shared by the
    ``world`` processes; a split smaller than the world is refused."""
    split = getattr(data, split_name)
    if len(split) < world:
        raise UserError(
            f"the {split_name} split has {len(split)} samples, fewer than the {world} processes",
            "evaluate with fewer processes",
        )
    return make_loader(
        options, data, split, train=False, device=device, batch_size=max(1, options.batch_size // world)
    )
