"""Stratified k-fold cross-validation of a recipe (``--folds K``): K full runs in one study folder.

    <output-dir>/<recipe>-cv-<time>/         (or --run-name)
        config.json                          the study's config; --resume STUDY_DIR continues it
        folds.json                           the fold of every pooled (train + val) sample
        fold-<i>/                            a full run (config.json, checkpoints, report/,
                                             summary.json) training on the other folds and
                                             validating on fold i
        fold-<i>/cv_fold.json                its best model on the held-out fold and the test split:
                                             metrics and probabilities (written last: fold done)
        out_of_fold_report/                  report of the out-of-fold predictions (each pooled
        out_of_fold_predictions.csv          sample predicted once, by the fold not trained on it)
        ensemble_report/                     report of the folds' mean probability on the test split
        ensemble_test_predictions.csv        and those probabilities
        ensemble.json                        ensemble manifest of the folds' best checkpoints
        cv_summary.json / .csv               per fold, mean ± std and 95 % interval of every
                                             validation and test metric; out-of-fold and ensemble

The folds come from :mod:`ignite_cv.data.folds`; each is :func:`ignite_cv.training.fit.train_in_process`
on the data set with its train/val splits replaced, so it has everything a run has (early stopping on
its held-out fold, best checkpoint, report, resumable states). The loop runs inside one process group
(``idist.Parallel``, as ``fit``): under torchrun every fold trains on all ranks. Rank 0 decides what
each fold does (done, evaluate a finished run, resume its state, start) and tells the other ranks.
A killed study resumed with ``--resume STUDY_DIR`` keeps its finished folds and resumes the running
one from its newest training state, bitwise with ``--deterministic``; a fold killed before its first
state starts again in a new folder (``fold-<i>-2``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import ignite.distributed as idist
import torch

from ignite_cv.data.folds import (
    assign_folds,
    check_fold_count,
    check_folds,
    fold_bundle,
    fold_indices,
    pool_split,
)
from ignite_cv.data.placement import make_loader, place_data
from ignite_cv.data.sources import load_data
from ignite_cv.data.splits import DataBundle, Split
from ignite_cv.engine import StepOptions
from ignite_cv.evaluation import probability_metrics, split_probabilities
from ignite_cv.metrics import scalar_metrics
from ignite_cv.pipeline.batch_pipeline import BatchPipeline
from ignite_cv.pipeline.normalize import build_normalizer
from ignite_cv.run_folder import RunFolder
from ignite_cv.task import ClassificationTask
from ignite_cv.training import cv_summary
from ignite_cv.training.decisions import put_positive_last
from ignite_cv.training.fit import start_process, train_in_process
from ignite_cv.training.resume import state_folder
from ignite_cv.training_state import latest_valid_state, list_states
from ignite_cv.utils.atomic import write_json_atomic, write_text_atomic
from ignite_cv.utils.distributed import choose_backend, leave_together, say
from ignite_cv.utils.errors import UserError
from ignite_cv.utils.options import load_config_values, make_options
from ignite_cv.weights import load_model

FOLDS_FILE = "folds.json"
FOLD_RESULT = "cv_fold.json"
SUMMARY_FILE = "cv_summary.json"
SUMMARY_CSV = "cv_summary.csv"
MANIFEST_FILE = "ensemble.json"
OOF_REPORT = "out_of_fold_report"
ENSEMBLE_REPORT = "ensemble_report"
OOF_PREDICTIONS = "out_of_fold_predictions.csv"
ENSEMBLE_PREDICTIONS = "ensemble_test_predictions.csv"


def is_study(path: str | Path) -> bool:
    """Whether ``path`` is a cross-validation study folder (holds ``folds.json`` and ``config.json``)."""
    folder = Path(path) if path else None
    return folder is not None and (folder / FOLDS_FILE).is_file() and (folder / "config.json").is_file()


def wants_study(config) -> bool:
    """``--folds`` given, or ``--resume`` of a study folder (``auto``: when ``--folds`` is given)."""
    return config.folds != 0 or (config.resume not in ("", "auto") and is_study(config.resume))


def run_study(config) -> dict | None:
    """Cross-validate ``config`` in ``config.folds`` folds; returns the summary where it was written."""
    if config.resume:
        config = resumed_study_config(config)
    check_fold_count(config.folds)
    if config.prune_after > 0:
        raise UserError(
            "--prune-after does not combine with --folds",
            "cross-validate first, then prune the fold you keep with tools/prune.py",
        )
    backend = choose_backend(config.nproc_per_node, config.backend, config.device)
    nproc = config.nproc_per_node if config.nproc_per_node > 1 else None
    result: dict = {}
    with idist.Parallel(backend=backend, nproc_per_node=nproc) as parallel:
        parallel.run(_study_in_process, config, result)
    return result.get("summary")


def resumed_study_config(config):
    """The saved config of the study being resumed, pointing ``resume`` at its folder."""
    if config.resume == "auto":
        base = Path(config.output_dir)
        candidates = [
            p for p in base.glob(f"{config.recipe}-cv-*") if is_study(p) and not (p / SUMMARY_FILE).is_file()
        ]
        if not candidates:
            raise UserError(
                f"--resume auto found no unfinished {config.recipe} study in {base}",
                "pass --resume STUDY_DIR or start a new study",
            )
        study = max(candidates, key=lambda p: p.stat().st_mtime)
    else:
        study = Path(config.resume)
        if not is_study(study):
            raise UserError(
                f"--resume {study} is not a cross-validation study folder (no {FOLDS_FILE})",
                "pass the folder a --folds run created",
            )
    values = load_config_values(type(config), study / "config.json")
    values["resume"] = str(study)
    return make_options(type(config), values)


# --- the study in one process ----------------------------------------------------------------------


@dataclass
class FoldResult:
    """One finished fold: its folder (relative to the study), best model's metrics and probabilities."""

    fold: int
    folder: str
    val_indices: torch.Tensor
    val: dict
    test: dict
    val_probabilities: torch.Tensor
    test_probabilities: torch.Tensor
    best: dict
    best_checkpoint: str | None
    epochs_run: int

    def to_json(self) -> dict:
        return {
            "fold": self.fold,
            "dir": self.folder,
            "best_checkpoint": self.best_checkpoint,
            "best": self.best,
            "epochs_run": self.epochs_run,
            "val": self.val,
            "test": self.test,
            "val_indices": self.val_indices.tolist(),
            "val_probabilities": self.val_probabilities.tolist(),
            "test_probabilities": self.test_probabilities.tolist(),
        }

    @classmethod
    def from_json(cls, data: dict) -> FoldResult:
        return cls(
            fold=data["fold"],
            folder=data["dir"],
            val_indices=torch.tensor(data["val_indices"], dtype=torch.int64),
            val=data["val"],
            test=data["test"],
            val_probabilities=torch.tensor(data["val_probabilities"], dtype=torch.float32),
            test_probabilities=torch.tensor(data["test_probabilities"], dtype=torch.float32),
            best=data["best"],
            best_checkpoint=data["best_checkpoint"],
            epochs_run=data["epochs_run"],
        )


def _study_in_process(local_rank: int, config, result: dict) -> None:
    device = start_process(config)
    data = place_data(put_positive_last(config, load_data(config, config.seed)), config, device)
    pool = pool_split(data)
    check_folds(config.folds, pool.labels, data.class_names)
    assignment = assign_folds(pool.labels, config.folds, config.fold_seed)
    study = _broadcast(str(_open_study(config, data, pool, assignment)) if idist.get_rank() == 0 else None)
    study = Path(study)
    say(
        f"cross-validation: {config.folds} stratified folds of {len(pool)} train+val samples "
        f"(fold seed {config.fold_seed}); test split: {len(data.test)} samples, never in a fold; "
        f"study folder: {study}"
    )
    task = ClassificationTask(data.num_classes)
    folds = [
        _run_fold(config, study, data, pool, assignment, fold, task, device) for fold in range(config.folds)
    ]
    summary = _summarize(config, study, data, pool, folds, task, device)
    if summary is not None:
        result["summary"] = summary
    leave_together()


def _open_study(config, data: DataBundle, pool: Split, assignment: torch.Tensor) -> Path:
    """Rank 0: a new study folder with its config and folds, or the resumed one with its folds checked."""
    record = {
        "folds": config.folds,
        "fold_seed": config.fold_seed,
        "pool": len(pool),
        "test": len(data.test),
        "class_names": list(data.class_names),
        "assignment": assignment.tolist(),
    }
    if pool.files is not None:
        record["pool_files"] = list(pool.files)
    if config.resume:
        folder = Path(config.resume)
        saved = json.loads((folder / FOLDS_FILE).read_text())
        if saved.get("assignment") != record["assignment"] or saved.get("pool") != record["pool"]:
            raise UserError(
                f"the data no longer gives the folds saved in {folder / FOLDS_FILE}",
                "resume with the data (and --data-root) the study started with",
            )
        return folder
    folder = RunFolder.create(config.output_dir, f"{config.recipe}-cv", config.run_name)
    folder.write_json("config.json", config.to_dict())
    write_json_atomic(folder.path / FOLDS_FILE, record, strict=True)
    return folder.path


def _run_fold(
    config, study: Path, data: DataBundle, pool: Split, assignment, fold: int, task, device
) -> FoldResult:
    """Fold ``fold`` done, evaluated, resumed or started, as rank 0's look at its folder says."""
    plan = json.loads(_broadcast(json.dumps(_plan_fold(study, fold)) if idist.get_rank() == 0 else None))
    if plan["action"] == "done":
        return FoldResult.from_json(json.loads((study / plan["dir"] / FOLD_RESULT).read_text()))
    bundle = fold_bundle(data, pool, assignment, fold)
    train_idx, val_idx = fold_indices(assignment, fold)
    fold_config = dataclasses.replace(
        config,
        output_dir=str(study),
        run_name=f"fold-{fold}",
        folds=0,
        resume=str(study / plan["dir"]) if plan["action"] == "resume" else "",
    )
    say(
        f"fold {fold + 1}/{config.folds}: {len(train_idx)} train / {len(val_idx)} val (held out) / "
        f"{len(bundle.test)} test" + (f", resuming {plan['dir']}" if plan["action"] == "resume" else "")
    )
    if plan["action"] == "evaluate":  # trained, killed before its predictions were written
        folder = study / plan["dir"]
        run_summary = json.loads((folder / "summary.json").read_text())
        model, card = load_model(run_summary["best_checkpoint"], device)
        pipeline = BatchPipeline(build_normalizer(card.normalization)).to(device)
    else:
        run = train_in_process(fold_config, bundle)
        model, pipeline = run.model.model, run.model.pipeline
        run_summary = run.summary
        folder = Path(run_summary["run_dir"]) if run_summary is not None else None
    step = StepOptions(config.amp, config.channels_last)
    val = _predict(fold_config, bundle, bundle.val, model, task, pipeline, device, step)
    test = _predict(fold_config, bundle, bundle.test, model, task, pipeline, device, step)
    if not torch.equal(val[1], bundle.val.labels.cpu()) or not torch.equal(test[1], bundle.test.labels.cpu()):
        raise RuntimeError("fold predictions are not in the order of their split")
    if idist.get_rank() == 0:
        best_file = run_summary.get("best_checkpoint")
        outcome = FoldResult(
            fold=fold,
            folder=folder.name,
            val_indices=val_idx,
            val=scalar_metrics(val[2]),
            test=scalar_metrics(test[2]),
            val_probabilities=val[0],
            test_probabilities=test[0],
            best=run_summary["best"],
            best_checkpoint=Path(best_file).resolve().relative_to(study.resolve()).as_posix()
            if best_file
            else None,
            epochs_run=run_summary["epochs_run"],
        )
        write_json_atomic(folder / FOLD_RESULT, outcome.to_json(), strict=True)
        say(
            f"fold {fold + 1}/{config.folds} done: val "
            + " ".join(f"{k} {v:.4f}" for k, v in outcome.val.items() if k != "loss")
        )
        return outcome
    return FoldResult(
        fold, "", val_idx, scalar_metrics(val[2]), scalar_metrics(test[2]), val[0], test[0], {}, None, 0
    )


def _predict(config, bundle: DataBundle, split: Split, model, task, pipeline, device, step):
    loader = make_loader(config, bundle, split, train=False, device=device)
    metrics, probabilities, labels, _ = split_probabilities(
        model, task, pipeline, device, loader, len(split), step
    )
    return probabilities, labels, metrics


def _plan_fold(study: Path, fold: int) -> dict:
    """Rank 0's reading of fold ``fold``'s newest folder: done, evaluate, resume, or new."""
    current = _fold_folder(study, fold)
    if current is None:
        return {"action": "new", "dir": None}
    if (current / FOLD_RESULT).is_file():
        return {"action": "done", "dir": current.name}
    if (current / "summary.json").is_file():
        return {"action": "evaluate", "dir": current.name}
    if list_states(state_folder(current)):
        try:
            latest_valid_state(state_folder(current), warn=lambda _: None)  # the fold warns when it resumes
            return {"action": "resume", "dir": current.name}
        except UserError:
            pass  # every state damaged: as if it had none
    return {"action": "new", "dir": None}  # stopped before its first state: a new folder (fold-<i>-2)


def _fold_folder(study: Path, fold: int) -> Path | None:
    """The newest folder of ``fold``: ``fold-<i>``, or the highest ``fold-<i>-<n>``."""
    base = f"fold-{fold}"
    found = []
    for path in study.glob(f"{base}*"):
        suffix = path.name[len(base) :]
        if path.is_dir() and (suffix == "" or (suffix.startswith("-") and suffix[1:].isdigit())):
            found.append((int(suffix[1:]) if suffix else 1, path))
    return max(found)[1] if found else None


def _broadcast(text: str | None) -> str:
    """Rank 0's string on every rank."""
    if idist.get_world_size() == 1:
        return text
    return idist.broadcast(text, src=0, safe_mode=True)


# --- the summary -----------------------------------------------------------------------------------


def _summarize(config, study: Path, data: DataBundle, pool: Split, folds: list[FoldResult], task, device):
    """Out-of-fold and ensemble metrics (every rank), then the reports, manifest and summary (rank 0)."""
    n, classes = len(pool), data.num_classes
    oof = torch.zeros(n, classes, dtype=torch.float32)
    covered = torch.zeros(n, dtype=torch.int64)
    for fold in folds:
        oof[fold.val_indices] = fold.val_probabilities
        covered[fold.val_indices] += 1
    if not torch.equal(covered, torch.ones(n, dtype=torch.int64)):
        raise RuntimeError("the folds' held-out samples do not cover the pool exactly once")
    pool_labels, test_labels = pool.labels.cpu(), data.test.labels.cpu()
    ensemble = torch.stack([f.test_probabilities.double() for f in folds]).mean(dim=0).float()
    oof_metrics = probability_metrics(oof, pool_labels, task, device)
    ensemble_metrics = probability_metrics(ensemble, test_labels, task, device)
    if idist.get_rank() != 0:
        return None
    from ignite_cv.ensemble.manifest import write_manifest
    from ignite_cv.report import write_test_report

    names = list(data.class_names)
    oof_report = write_test_report(
        study / OOF_REPORT, pool_labels, oof, names, _images(pool), split_name="out_of_fold"
    )
    write_test_report(
        study / ENSEMBLE_REPORT, test_labels, ensemble, names, _images(data.test), split_name="test"
    )
    fold_of = torch.zeros(n, dtype=torch.int64)
    for fold in folds:
        fold_of[fold.val_indices] = fold.fold
    sources = list(pool.files) if pool.files is not None else None
    write_text_atomic(
        study / OOF_PREDICTIONS,
        cv_summary.predictions_csv(pool_labels.tolist(), oof.tolist(), names, fold_of.tolist(), sources),
    )
    test_sources = list(data.test.files) if data.test.files is not None else None
    write_text_atomic(
        study / ENSEMBLE_PREDICTIONS,
        cv_summary.predictions_csv(test_labels.tolist(), ensemble.tolist(), names, sources=test_sources),
    )
    checkpoints = [study / f.best_checkpoint for f in folds if f.best_checkpoint]
    if len(checkpoints) == len(folds):
        write_manifest(study / MANIFEST_FILE, checkpoints)
    per_fold = [
        {
            "fold": f.fold,
            "dir": f.folder,
            "best_checkpoint": f.best_checkpoint,
            "best": f.best,
            "epochs_run": f.epochs_run,
            "val_samples": len(f.val_indices),
            "val": f.val,
            "test": f.test,
        }
        for f in folds
    ]
    summary = {
        "folds": config.folds,
        "fold_seed": config.fold_seed,
        "seed": config.seed,
        "class_names": names,
        "data": {
            "pool": n,
            "test": len(data.test),
            "pool_class_counts": torch.bincount(pool_labels, minlength=classes).tolist(),
        },
        "per_fold": per_fold,
        "aggregate": cv_summary.aggregate(per_fold),
        "out_of_fold": {
            "metrics": scalar_metrics(oof_metrics),
            "confusion_matrix": oof_metrics["confusion_matrix"].tolist(),
            "report": OOF_REPORT,
            "predictions": OOF_PREDICTIONS,
            "roc_auc": oof_report["roc_auc"],
        },
        "ensemble_test": {
            "metrics": scalar_metrics(ensemble_metrics),
            "confusion_matrix": ensemble_metrics["confusion_matrix"].tolist(),
            "report": ENSEMBLE_REPORT,
            "predictions": ENSEMBLE_PREDICTIONS,
            "manifest": MANIFEST_FILE if len(checkpoints) == len(folds) else None,
        },
    }
    write_json_atomic(study / SUMMARY_FILE, summary, strict=True)
    cv_summary.write_summary_csv(study / SUMMARY_CSV, summary)
    metric = "roc_auc" if task.binary else "accuracy"
    say(cv_summary.format_table(summary, metric))
    say(f"study folder: {study}")
    return summary


def _images(split: Split) -> torch.Tensor | None:
    return split.images.cpu() if split.in_memory else None
