"""What a study leaves in its folder: ``trials.csv``, ``best_config.json``, ``study.json`` and figures.

Everything is read from the storage, so any worker (or a rerun with the target already reached)
writes the same files. ``best_config.json`` is the best complete trial's config (kept in the study
database as the trial's ``config`` attribute, so it is there even when the trial ran on another
machine) with its run folder reset: ``python recipes/<recipe>.py --config best_config.json`` reruns it
as a new run. Figures are Optuna's matplotlib visualisations: the optimisation history, the
parameter importances (fANOVA), a parallel-coordinate and a slice plot, and the intermediate values
(each trial's validation curve, where pruning shows).
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from ignite_cv.tuning.storage import shown_url
from ignite_cv.tuning.study import StudyPlan, finished_count, trial_counts
from ignite_cv.utils.atomic import atomic_open, write_atomic, write_json_atomic

#: Figure name → (Optuna's matplotlib function, complete trials it needs to say anything).
FIGURES = {
    "optimization_history": ("plot_optimization_history", 1),
    "intermediate_values": ("plot_intermediate_values", 1),
    "parallel_coordinate": ("plot_parallel_coordinate", 2),
    "slice": ("plot_slice", 2),
    "param_importances": ("plot_param_importances", 3),  # fANOVA over fewer is noise
}


def write_results(study: optuna.Study, plan: StudyPlan, say: Callable[[str], None] = print) -> dict:
    """Write the study's files into ``plan.folder``; returns what ``study.json`` holds."""
    folder = plan.folder
    trials = study.get_trials(deepcopy=False)
    write_trials_csv(folder / "trials.csv", trials)
    counts = trial_counts(study)
    info: dict[str, Any] = {
        "study_name": study.study_name,
        "storage": shown_url(plan.storage_url),
        "metric": _resolved_metric(plan.metric, trials),
        "direction": plan.direction,
        "target_trials": plan.target,
        "finished": finished_count(counts),
        "counts": dict(sorted(counts.items())),
        "space": [p.describe() for p in plan.space],
        "best": None,
    }
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if complete:
        best = study.best_trial
        info["best"] = {
            "number": best.number,
            "value": best.value,
            "params": best.params,
            "run_dir": best.user_attrs.get("run_dir"),
            "epochs_run": best.user_attrs.get("epochs_run"),
            "config": str(folder / "best_config.json"),
        }
        write_json_atomic(folder / "best_config.json", best_config(best, plan.base.output_dir))
    info["figures"] = write_figures(study, folder / "figures", say)
    write_json_atomic(folder / "study.json", info, strict=True)
    return info


def best_config(trial: optuna.trial.FrozenTrial, output_dir: str) -> dict:
    """The trial's config as a fresh run: same values, a new run folder under ``output_dir``."""
    return {**trial.user_attrs["config"], "run_name": "", "output_dir": output_dir}


def write_trials_csv(path: Path, trials: list) -> None:
    """One row per trial: number, state, value, each parameter, epochs, pruning, retries, run folder."""
    names = sorted({name for t in trials for name in t.params})
    header = ["number", "state", "value", *names, "epochs_run", "best_epoch", "last_reported_epoch"]
    header += ["retry_of", "duration_s", "run_dir", "note"]
    with atomic_open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for t in trials:
            duration = t.duration.total_seconds() if t.duration is not None else None
            steps = sorted(t.intermediate_values)
            writer.writerow(
                [
                    t.number,
                    t.state.name.lower(),
                    t.value,
                    *(t.params.get(name) for name in names),
                    t.user_attrs.get("epochs_run"),
                    t.user_attrs.get("best_epoch"),
                    steps[-1] if steps else None,
                    t.system_attrs.get("failed_trial"),
                    round(duration, 1) if duration is not None else None,
                    t.user_attrs.get("run_dir"),
                    t.user_attrs.get("withdrawn", ""),
                ]
            )


def write_figures(study: optuna.Study, folder: Path, say: Callable[[str], None] = print) -> dict[str, str]:
    """Optuna's matplotlib figures as PNGs; a figure the study cannot draw yet (too few complete
    trials, a single parameter...) is skipped with a line saying why. Returns name → path."""
    import matplotlib

    matplotlib.use("Agg")  # files only; a tool process has no display
    import matplotlib.pyplot as plt
    import numpy as np
    from optuna.visualization import matplotlib as optuna_plots

    written: dict[str, str] = {}
    complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    for name, (function, needed) in FIGURES.items():
        if complete < needed:
            say(f"figure {name} skipped: it needs {needed} complete trials, the study has {complete}")
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "experimental" and "too few trials" warnings
            try:
                axes = getattr(optuna_plots, function)(study)
            except (ValueError, RuntimeError, ZeroDivisionError) as err:
                say(f"figure {name} skipped: {err}")
                continue
            figure = np.atleast_1d(axes).flat[0].figure
            if not any(ax.has_data() for ax in figure.axes):
                plt.close(figure)
                continue
            width, height = figure.get_size_inches()
            figure.set_size_inches(max(width, 8), max(height, 5))
        target = folder / f"{name}.png"
        write_atomic(target, lambda tmp, f=figure: f.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
        plt.close(figure)
        written[name] = str(target)
    return written


def _resolved_metric(metric: str, trials: list) -> str:
    """``auto`` as the runs resolved it (accuracy, or roc_auc for two classes), once a trial ran."""
    if metric != "auto":
        return metric
    return next((t.user_attrs["metric"] for t in trials if "metric" in t.user_attrs), metric)
