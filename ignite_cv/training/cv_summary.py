"""A cross-validation study's numbers: per-fold metrics, their mean ± std and 95 % interval, as JSON and CSV.

The interval is Student's t interval of the mean over the K folds, ``mean ± t(0.975, K-1)·s/√K`` with
``s`` the sample standard deviation (``ddof=1``). Folds share training data, so their scores are not
independent and no unbiased estimator of the variance of a K-fold mean exists (Bengio & Grandvalet,
JMLR 2004): read the interval as a guide to the spread, not a guarantee.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from typing import Any

from ignite_cv.utils.atomic import write_text_atomic

#: Where a metric's per-fold values come from in each fold's entry.
SPLITS = ("val", "test")


def describe(values: Sequence[float]) -> dict[str, Any]:
    """``mean``, ``std`` (ddof=1; 0 for one value), ``ci95`` ``[low, high]`` and the ``values``
    (NaN values, e.g. an undefined ROC-AUC, are left out of the statistics and counted in ``n``)."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    k = len(finite)
    if k == 0:
        return {
            "mean": math.nan,
            "std": math.nan,
            "ci95": [math.nan, math.nan],
            "n": 0,
            "values": list(values),
        }
    mean = math.fsum(finite) / k
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in finite) / (k - 1)) if k > 1 else 0.0
    if k > 1:
        from scipy.stats import t

        half = float(t.ppf(0.975, k - 1)) * std / math.sqrt(k)
    else:
        half = math.nan
    return {"mean": mean, "std": std, "ci95": [mean - half, mean + half], "n": k, "values": list(values)}


def aggregate(per_fold: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{split: {metric: describe(values over folds)}}`` for every scalar metric of ``val`` and ``test``."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for split in SPLITS:
        names = list(per_fold[0][split]) if per_fold else []
        out[split] = {
            name: describe([fold[split].get(name, math.nan) for fold in per_fold]) for name in names
        }
    return out


def summary_csv(summary: dict[str, Any]) -> str:
    """One row per fold and split, then mean / std / ci95 rows, then the out-of-fold and ensemble rows."""
    names: list[str] = []
    for split in SPLITS:
        for name in summary["aggregate"][split]:
            if name not in names:
                names.append(name)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["row", "split", *names])

    def cells(values: dict[str, Any]) -> list[str]:
        return [_cell(values.get(name)) for name in names]

    for fold in summary["per_fold"]:
        for split in SPLITS:
            writer.writerow([f"fold-{fold['fold']}", split, *cells(fold[split])])
    for split in SPLITS:
        stats = summary["aggregate"][split]
        writer.writerow(["mean", split, *cells({n: s["mean"] for n, s in stats.items()})])
        writer.writerow(["std", split, *cells({n: s["std"] for n, s in stats.items()})])
        writer.writerow(["ci95_low", split, *cells({n: s["ci95"][0] for n, s in stats.items()})])
        writer.writerow(["ci95_high", split, *cells({n: s["ci95"][1] for n, s in stats.items()})])
    writer.writerow(["out_of_fold", "train+val", *cells(summary["out_of_fold"]["metrics"])])
    writer.writerow(["ensemble", "test", *cells(summary["ensemble_test"]["metrics"])])
    return buffer.getvalue()


def write_summary_csv(path, summary: dict[str, Any]) -> None:
    write_text_atomic(path, summary_csv(summary))


def predictions_csv(
    labels: Sequence[int],
    probabilities: Sequence[Sequence[float]],
    class_names: Sequence[str],
    folds: Sequence[int] | None = None,
    sources: Sequence[str] | None = None,
) -> str:
    """One row per sample: ``index`` (in its split), ``source`` (its file, if any), ``label``, ``fold``
    (out-of-fold: the fold that predicted it), then one probability column per class."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["index", *(["source"] if sources else []), "label", *(["fold"] if folds is not None else [])]
    writer.writerow([*header, *(f"p_{name}" for name in class_names)])
    for i, (label, row) in enumerate(zip(labels, probabilities)):
        cells = [i, *([sources[i]] if sources else []), class_names[int(label)]]
        cells += [int(folds[i])] if folds is not None else []
        writer.writerow([*cells, *(repr(float(p)) for p in row)])
    return buffer.getvalue()


def format_table(summary: dict[str, Any], metric: str) -> str:
    """The console table of one metric: per-fold val and test, mean ± std, OOF, ensemble."""
    lines = [f"{'':<14}{'val ' + metric:>18}{'test ' + metric:>18}"]
    for fold in summary["per_fold"]:
        val, test = fold["val"].get(metric, math.nan), fold["test"].get(metric, math.nan)
        lines.append(f"{'fold ' + str(fold['fold']):<14}{val:>18.4f}{test:>18.4f}")
    stats = summary["aggregate"]
    mean_std = [
        f"{stats[s][metric]['mean']:.4f} ± {stats[s][metric]['std']:.4f}" if metric in stats[s] else "-"
        for s in SPLITS
    ]
    lines.append(f"{'mean ± std':<14}{mean_std[0]:>18}{mean_std[1]:>18}")
    oof = summary["out_of_fold"]["metrics"].get(metric, math.nan)
    ens = summary["ensemble_test"]["metrics"].get(metric, math.nan)
    lines.append(f"{'out-of-fold':<14}{oof:>18.4f}{'':>18}")
    lines.append(f"{'fold ensemble':<14}{'':>18}{ens:>18.4f}")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return repr(float(value))
