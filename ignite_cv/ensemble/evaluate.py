"""Evaluate an ensemble of checkpoints on a data split: each member as ``tools/evaluate.py`` would, then
the weighted mean of their probabilities, with ``tools/evaluate.py``'s report and ``metrics.json``.

Each member reads the split with its own preprocessing (its card's size and channels, its card's or
run's centre crop, else ``--center-crop``) and its own normalization, through
:func:`ignite_cv.evaluation.split_probabilities`; members with the same input share one data load.
Members must see the same samples in the same order (the same ``--dataset``, ``--data-root`` and
``--seed``; the test split never depends on the seed). The metrics of the mean probability come from
:func:`ignite_cv.evaluation.probability_metrics` (the evaluation's metric set), so an ensemble of one
checkpoint reports that checkpoint's numbers. Runs in every process of a distributed job, as the
evaluation does; rank 0 writes.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ignite.distributed as idist
import torch

from ignite_cv.engine import StepOptions
from ignite_cv.ensemble.manifest import (
    check_same_classes,
    check_weights,
    normalized,
    read_manifest,
    write_manifest,
)
from ignite_cv.evaluation import (
    METRICS_FILE,
    SPLITS,
    EvaluationOptions,
    checkpoint_center_crop,
    format_result,
    load_matching_data,
    probability_metrics,
    split_loader,
    split_probabilities,
)
from ignite_cv.metrics import scalar_metrics
from ignite_cv.pipeline.batch_pipeline import BatchPipeline
from ignite_cv.pipeline.normalize import build_normalizer
from ignite_cv.run_folder import RunFolder
from ignite_cv.task import ClassificationTask
from ignite_cv.utils.atomic import write_json_atomic
from ignite_cv.utils.devices import resolve_device
from ignite_cv.utils.distributed import choose_backend, leave_together, spawn_arguments
from ignite_cv.utils.errors import UserError
from ignite_cv.utils.options import option
from ignite_cv.weights import load_model, read_card

#: The manifest written beside the report.
MANIFEST_FILE = "ensemble.json"


@dataclass
class EnsembleOptions(EvaluationOptions):
    """``tools/evaluate.py``'s options; members keep their own input size and channels."""

    output_dir: str = option(
        "",
        "report folder (default: ensembles/ensemble-<split>-<dataset>, or report-<split>-<dataset> beside "
        "a manifest; -2, -3... if it exists)",
    )


def evaluate_manifest(path: str | Path, options: EnsembleOptions, say=None) -> dict[str, Any] | None:
    """:func:`evaluate_ensemble` of the manifest at ``path`` (its hashes checked)."""
    manifest = read_manifest(path)
    target = options.output_dir or str(
        Path(path).resolve().parent / f"report-{options.split}-{options.dataset}"
    )
    options = dataclasses.replace(options, output_dir=target)
    return evaluate_ensemble(manifest.checkpoints, manifest.weights, options, say)


def evaluate_ensemble(
    checkpoints: Sequence[str | Path],
    weights: Sequence[float] | None,
    options: EnsembleOptions,
    say: Callable[[str], None] | None = None,
) -> dict[str, Any] | None:
    """Evaluate the weighted mean of ``checkpoints``' probabilities on ``options.split``; write the report,
    ``metrics.json`` and the ensemble's manifest into a new folder. Returns the metrics dict where it
    was written (None in other processes and in the caller of spawned ones).

    Raises:
        UserError: no checkpoints, weights that do not fit, checkpoints with different class names, a
            data set that does not fit a member, ``--image-size``/``--channels`` (members keep their own).
    """
    checkpoints = [Path(c) for c in checkpoints]
    if not checkpoints:
        raise UserError("an ensemble needs at least one checkpoint", "pass checkpoint files")
    values = check_weights(weights, len(checkpoints))
    if options.split not in SPLITS:
        raise UserError(f"unknown split {options.split!r}", f"choose one of: {', '.join(SPLITS)}")
    if options.image_size or options.channels:
        raise UserError(
            "--image-size and --channels do not apply to an ensemble",
            "drop them: each member reads its own size",
        )
    check_same_classes([(c, read_card(c)) for c in checkpoints])  # before any data is read
    say = say or functools.partial(print, flush=True)
    result: dict[str, Any] = {}
    backend = choose_backend(options.nproc_per_node, options.backend, options.device)
    spawn = spawn_arguments(options.nproc_per_node) if backend is not None else {}
    with idist.Parallel(backend=backend, **spawn) as parallel:
        parallel.run(_evaluate_in_process, checkpoints, values, options, say, result)
    return result.get("metrics")


def _evaluate_in_process(
    local_rank: int, checkpoints: list[Path], weights: list[float], options, say, result: dict
) -> None:
    rank, world = idist.get_rank(), idist.get_world_size()
    start = time.perf_counter()
    device = resolve_device(options.device)
    members = [(c, *load_model(c, device)) for c in checkpoints]
    names = check_same_classes([(c, card) for c, _, card in members])
    task = ClassificationTask(len(names))
    step = StepOptions.from_config(options)
    shares = normalized(weights)
    datasets: dict[tuple, Any] = {}
    total, labels, images, data_name, per_member = None, None, None, "", []
    for index, (checkpoint, model, card) in enumerate(members):
        crop = checkpoint_center_crop(checkpoint, card, options.center_crop)
        key = (tuple(card.image_size), card.in_channels, crop)
        if key not in datasets:
            datasets[key] = load_matching_data(dataclasses.replace(options, center_crop=crop), card)
        data = datasets[key]
        data_name = data_name or data.name
        split = getattr(data, options.split)
        loader = split_loader(options, data, options.split, device, world)
        pipeline = BatchPipeline(build_normalizer(card.normalization)).to(device)
        if rank == 0:
            say(f"member {index + 1}/{len(members)}: {checkpoint} ({card.arch}, weight {shares[index]:.4g})")
        metrics, probs, member_labels, member_images = split_probabilities(
            model, task, pipeline, device, loader, len(split), step, keep_images=index == 0
        )
        if labels is None:
            labels, images = member_labels, member_images
        elif not torch.equal(labels, member_labels):
            raise UserError(
                f"{checkpoint} sees other samples of the {options.split} split than {checkpoints[0]}",
                "ensemble checkpoints trained on the same data set",
            )
        weighted = probs * shares[index]
        total = weighted if total is None else total + weighted
        per_member.append(
            {"checkpoint": str(checkpoint), "arch": card.arch, "metrics": scalar_metrics(metrics)}
        )
    metrics = probability_metrics(total, labels, task, device)
    if rank == 0:
        result["metrics"] = _write_results(
            checkpoints,
            weights,
            options,
            names,
            data_name,
            metrics,
            total,
            labels,
            images,
            per_member,
            start,
            world,
        )
        say(format_result(result["metrics"]))
    leave_together()


def _write_results(
    checkpoints, weights, options, names, data_name, metrics, probs, labels, images, per_member, start, world
) -> dict[str, Any]:
    from ignite_cv.report import write_test_report

    split = options.split
    target = (
        Path(options.output_dir)
        if options.output_dir
        else Path("ensembles") / f"ensemble-{split}-{options.dataset}"
    )
    folder = RunFolder.create(target.parent, "ensemble", target.name).path
    report = write_test_report(folder, labels.numpy(), probs.numpy(), names, images, split_name=split)
    write_manifest(folder / MANIFEST_FILE, checkpoints, weights)
    per_class = {
        key: dict(zip(names, metrics[key].tolist()))
        for key in ("precision", "recall", "f1")
        if key in metrics
    }
    out = {
        "checkpoints": [str(c) for c in checkpoints],
        "weights": list(weights),
        "members": per_member,
        "manifest": str(folder / MANIFEST_FILE),
        "dataset": options.dataset,
        "data_root": options.data_root,
        "data": data_name,
        "split": split,
        "n": len(labels),
        "class_names": names,
        "metrics": scalar_metrics(metrics),
        "per_class": per_class,
        "confusion_matrix": metrics["confusion_matrix"].tolist(),
        "report": report,
        "world_size": world,
        "wall_time_s": round(time.perf_counter() - start, 2),
        "output_dir": str(folder),
    }
    write_json_atomic(folder / METRICS_FILE, out, strict=True)
    return out
