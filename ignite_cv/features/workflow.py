"""``tools/features.py``: a checkpoint's frozen features → classic classifiers → the test report.

1. The data set is loaded as the checkpoint's input (its size, channels, centre crop; as
   ``tools/evaluate.py`` does; its classes may differ from the checkpoint's, whose backbone may
   come from another task) and every split's pooled features are exported to
   ``features_<split>.safetensors`` (``features`` float32 (N, D), ``labels`` int64 (N,); metadata:
   checkpoint, split, class names as JSON).
2. Each classifier (:mod:`ignite_cv.features.classifiers`) is tuned by a stratified cross-validated
   grid search on train + val pooled (the test split is never seen) and refit on all of it.
3. Its test probabilities get the evaluation's metrics (:func:`ignite_cv.evaluation.probability_metrics`)
   and ``tools/evaluate.py``'s report and ``metrics.json`` in ``<classifier>/``; ``results.json``
   holds every classifier's CV score, chosen setting and test metrics.

One process (the features of a small data set take seconds); the output folder is
``<output-dir>/features-<time>/`` (or ``--run-name``), never an existing one.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ignite_cv.config import ComputeOptions, SeedOptions
from ignite_cv.data.options import DataOptions
from ignite_cv.data.placement import make_loader
from ignite_cv.evaluation import (
    METRICS_FILE,
    checkpoint_center_crop,
    load_matching_data,
    probability_metrics,
)
from ignite_cv.features.classifiers import (
    CLASSIFIERS,
    REBALANCE,
    check_cv_folds,
    class_probabilities,
    fit_classifier,
)
from ignite_cv.features.extract import pooled_features, save_features
from ignite_cv.metrics import scalar_metrics
from ignite_cv.pipeline.batch_pipeline import BatchPipeline
from ignite_cv.pipeline.normalize import build_normalizer
from ignite_cv.run_folder import RunFolder
from ignite_cv.task import ClassificationTask
from ignite_cv.utils.atomic import write_json_atomic
from ignite_cv.utils.devices import resolve_device
from ignite_cv.utils.options import option
from ignite_cv.weights import load_model

SPLITS = ("train", "val", "test")


@dataclass
class FeatureOptions(SeedOptions, ComputeOptions, DataOptions):
    """The data options of training (the set the checkpoint was trained on) plus the classifiers'."""

    image_size: int = option(0, "square size in pixels (0 = the checkpoint's)", minimum=0)
    channels: int = option(0, "image channels: 1 or 3 (0 = the checkpoint's)", choices=(0, 1, 3))
    classifier: str = option("all", "classic classifier(s) on the features", choices=(*CLASSIFIERS, "all"))
    cv_folds: int = option(5, "stratified folds of the grid search on train+val", minimum=2)
    rebalance: str = option(
        "none",
        "class rebalancing: class weights (balanced) or SMOTE inside each training fold (needs the "
        "[imbalance] extra)",
        choices=REBALANCE,
    )
    batch_size: int = option(256, "batch size of the feature extraction", minimum=1)
    output_dir: str = option("runs", "folder that receives the features-<time> folder")
    run_name: str = option("", "name of that folder (default: features-<time>)")
    threads: int = option(0, "CPU threads for torch (0 = torch's default)", minimum=0)

    @property
    def classifiers(self) -> tuple[str, ...]:
        return CLASSIFIERS if self.classifier == "all" else (self.classifier,)


def run_features(
    checkpoint: str | Path, options: FeatureOptions, say: Callable[[str], None] = print
) -> dict[str, Any]:
    """Export the features, fit and report every chosen classifier; returns ``results.json``'s content."""
    start = time.perf_counter()
    checkpoint = Path(checkpoint)
    device = resolve_device(options.device)
    model, card = load_model(checkpoint, device)
    crop = checkpoint_center_crop(checkpoint, card, options.center_crop)
    # The classifiers learn the data's classes: the backbone may come from another task.
    data = load_matching_data(dataclasses.replace(options, center_crop=crop), card, same_classes=False)
    names = [str(n) for n in data.class_names]
    pool_labels = torch.cat([data.train.labels, data.val.labels]).numpy()
    check_cv_folds(options.cv_folds, pool_labels, options.rebalance)  # before any file is written
    task = ClassificationTask(len(names))
    pipeline = BatchPipeline(build_normalizer(card.normalization)).to(device)
    folder = RunFolder.create(options.output_dir, "features", options.run_name)
    say(f"features of {checkpoint} ({card.arch}) on {data.name}: into {folder.path}")
    arrays = {}
    for name in SPLITS:
        split = getattr(data, name)
        loader = make_loader(
            options, data, split, train=False, device=device, batch_size=options.batch_size, shard=False
        )
        features, labels, images = pooled_features(
            model, pipeline, loader, device, options.amp, keep_images=name == "test"
        )
        metadata = {"checkpoint": str(checkpoint), "split": name, "class_names": json.dumps(names)}
        save_features(folder.path / f"features_{name}.safetensors", features, labels, metadata)
        arrays[name] = (features.numpy(), labels.numpy(), images)
    say(
        f"features: {arrays['train'][0].shape[1]} per image; "
        + ", ".join(f"{k} {len(v[1])}" for k, v in arrays.items())
    )
    pool_x = np.concatenate([arrays["train"][0], arrays["val"][0]])
    pool_y = np.concatenate([arrays["train"][1], arrays["val"][1]])
    test_x, test_y, test_images = arrays["test"]
    results: dict[str, Any] = {}
    for name in options.classifiers:
        fitted = fit_classifier(
            name, pool_x, pool_y, len(names), options.rebalance, options.cv_folds, options.seed
        )
        probs = class_probabilities(fitted["model"], test_x, len(names))
        metrics = probability_metrics(
            torch.from_numpy(probs), torch.from_numpy(test_y), task, torch.device("cpu")
        )
        results[name] = _write_classifier(
            folder.path / name, name, fitted, metrics, probs, test_y, test_images, names, options
        )
        say(
            f"{name}: cv {fitted['scoring']} {fitted['cv_mean']:.4f} ± {fitted['cv_std']:.4f} "
            f"({fitted['best_params']}); test "
            + " ".join(f"{k} {v:.4f}" for k, v in results[name]["metrics"].items() if k != "loss")
        )
    out = {
        "checkpoint": str(checkpoint),
        "arch": card.arch,
        "dataset": options.dataset,
        "data_root": options.data_root,
        "feature_dim": int(pool_x.shape[1]),
        "samples": {k: len(v[1]) for k, v in arrays.items()},
        "rebalance": options.rebalance,
        "cv_folds": options.cv_folds,
        "classifiers": results,
        "wall_time_s": round(time.perf_counter() - start, 2),
        "output_dir": str(folder.path),
    }
    write_json_atomic(folder.path / "results.json", out, strict=True)
    return out


def _write_classifier(folder: Path, name, fitted, metrics, probs, labels, images, names, options) -> dict:
    from ignite_cv.report import write_test_report

    report = write_test_report(folder, labels, probs, names, images, split_name="test")
    entry = {
        "classifier": name,
        "cv_scoring": fitted["scoring"],
        "cv_mean": fitted["cv_mean"],
        "cv_std": fitted["cv_std"],
        "best_params": fitted["best_params"],
        "n": len(labels),
        "metrics": scalar_metrics(metrics),
        "confusion_matrix": metrics["confusion_matrix"].tolist(),
        "report": report,
    }
    write_json_atomic(
        folder / METRICS_FILE, {**entry, "dataset": options.dataset, "split": "test"}, strict=True
    )
    return entry
