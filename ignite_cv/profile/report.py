"""Text of the profiles: the tables of one model's cost and of a run's time, and the run's one-paragraph
summary with advice (``<run>/profile/timing.md``, ``summary.txt``; ``tools/profile.py``'s output)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ignite_cv.profile.model import ModelProfile
from ignite_cv.utils.text import markdown_table

#: Data loading at or above this share of the iteration time (data + step) gets its own advice.
DATA_SHARE_ADVICE = 0.25


def _mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


def profile_rows(profile: ModelProfile) -> list[tuple[str, str, float]]:
    """``(label, text, number)`` rows; the number feeds comparisons."""
    rows = [
        ("parameters", f"{profile.params:,}", float(profile.params)),
        ("trainable parameters", f"{profile.trainable:,}", float(profile.trainable)),
        ("MACs (1 image)", f"{profile.macs:,}", float(profile.macs)),
    ]
    for stats in profile.latency:
        b = stats.batch_size
        rows += [
            (f"latency batch {b}, median (ms)", f"{stats.median_ms:.3f}", stats.median_ms),
            (f"latency batch {b}, p90 (ms)", f"{stats.p90_ms:.3f}", stats.p90_ms),
            (f"throughput batch {b} (img/s)", f"{stats.throughput:,.1f}", stats.throughput),
            (
                f"peak memory batch {b}",
                _mib(profile.peak_memory.get(b, 0)),
                float(profile.peak_memory.get(b, 0)),
            ),
        ]
    return rows


def format_profile(profile: ModelProfile) -> str:
    """A markdown table of ``profile`` (and its top operators when measured)."""
    title = (
        f"{profile.name}: input {'×'.join(map(str, profile.input_shape))}, {profile.device}, "
        f"{profile.threads} threads"
    )
    repeats = ", ".join(f"batch {s.batch_size}: {s.repeats} repeats" for s in profile.latency)
    text = f"{title} ({repeats})\n\n" + markdown_table(
        ["", "value"], [[r[0], r[1]] for r in profile_rows(profile)]
    )
    if profile.top_ops:
        ops = [
            [o["name"], str(o["calls"]), f"{o['self_ms']:.3f}", f"{100 * o['share']:.1f}%"]
            for o in profile.top_ops
        ]
        text += "\nTop operators by self time (one forward at the largest batch)\n\n" + markdown_table(
            ["operator", "calls", "self ms", "share"], ops
        )
    return text


def format_comparison(a: ModelProfile, b: ModelProfile) -> str:
    """Side-by-side markdown table of two profiles, with ``b / a`` ratios."""
    rows_a = {label: (text, value) for label, text, value in profile_rows(a)}
    rows = []
    for label, text_b, value_b in profile_rows(b):
        if label not in rows_a:
            continue
        text_a, value_a = rows_a[label]
        ratio = f"{value_b / value_a:.3f}×" if value_a else "-"
        rows.append([label, text_a, text_b, ratio])
    header = ["", a.name, b.name, "second / first"]
    return (
        f"{a.device}, {a.threads} threads; input {'×'.join(map(str, a.input_shape))} vs "
        f"{'×'.join(map(str, b.input_shape))}\n\n" + markdown_table(header, rows)
    )


def largest_cost(results: dict[str, Any]) -> tuple[str, float]:
    """The largest of data loading, training step, validation and other handlers, and its share."""
    parts = results["parts_s"]
    total = sum(parts.values()) or 1.0
    name = max(parts, key=parts.get)
    return name, parts[name] / total


def summarize(results: dict[str, Any]) -> str:
    """The one-paragraph summary: shares of the training time, the largest cost and what to do about it."""
    parts = results["parts_s"]
    total = sum(parts.values())
    if total <= 0 or results["iterations"] == 0:
        return "profile: no training iteration was recorded, so there is nothing to summarise."
    iterations = results["iterations"]
    trainer = results["trainer"]
    share = {k: v / total for k, v in parts.items()}
    data_of_iteration = parts["data loading"] / max(parts["data loading"] + parts["training step"], 1e-12)
    largest, _ = largest_cost(results)
    handler = results["largest_other_handler"]
    handler_text = (
        f" (largest: {handler['name']} on {handler['event']}, {handler['total_s']:.2f} s)"
        if handler and parts["other handlers"] > 0
        else ""
    )
    evaluations = results["evaluator"]["step"]["calls"]
    text = (
        f"profile: {total:.1f} s of training over {iterations} iterations: "
        f"training step {100 * share['training step']:.0f}% ({trainer['step']['mean_ms']:.1f} ms/iteration), "
        f"data loading {100 * share['data loading']:.0f}% ({trainer['data']['mean_ms']:.1f} ms/batch, "
        f"{100 * data_of_iteration:.0f}% of step time), "
        f"validation {100 * share['validation']:.0f}% ({evaluations} batches), "
        f"other handlers {100 * share['other handlers']:.0f}%{handler_text}. "
        f"Largest cost: {largest}"
    )
    advice = []
    if data_of_iteration >= DATA_SHARE_ADVICE or largest == "data loading":
        advice.append(
            f"data loading is {100 * data_of_iteration:.0f}% of step time: raise --workers or use "
            "--data-on-device yes"
        )
    if largest == "training step":
        if results["device"].startswith("cuda"):
            advice.append(
                "the model's compute dominates: try --amp bf16, --channels-last or a larger "
                "--batch-size, or make the model cheaper with tools/prune.py"
            )
        else:
            advice.append(
                "the model's compute dominates on the CPU: use a GPU (--device cuda), a smaller "
                "model, or make it cheaper with tools/prune.py"
            )
    elif largest == "validation":
        advice.append(
            "validation costs more than training: use a smaller --val-fraction or a larger "
            "--batch-size for evaluation"
        )
    elif largest == "other handlers" and handler:
        advice.append(
            f"handler {handler['name']} ({handler['event']}) costs the most: make it run less often "
            "(e.g. --log-every, --image-grid-every)"
        )
    text += (": " + "; ".join(advice) if advice else "") + "."
    if results.get("gpu_synchronized"):
        text += (
            " (While profiling, the GPU was synchronised after each step so steps carry their kernel time.)"
        )
    if results["trace_files"]:
        trace = Path(results["trace_files"][0])
        profile_dir = trace.parent.parent
        text += (
            f" Tables in {profile_dir}/timing.md; trace of iterations {results['trace_iterations']}: "
            f"tensorboard --logdir {profile_dir} (torch-tb-profiler) or open {trace} in chrome://tracing or "
            "ui.perfetto.dev."
        )
    return text


def timing_tables(results: dict[str, Any]) -> str:
    """``timing.md``: the breakdown, then each engine's data/step/handler table (Ignite's profilers)."""
    total = results["total_s"] or 1.0
    out = [
        "# Training profile\n",
        results.get("summary", ""),
        "",
        "## Breakdown (seconds; validation runs inside a trainer handler)\n",
    ]
    out.append(
        markdown_table(
            ["part", "seconds", "share"],
            [[k, f"{v:.3f}", f"{100 * v / total:.1f}%"] for k, v in results["parts_s"].items()],
        )
    )
    for title, key in (("Trainer", "trainer"), ("Evaluator (all validation runs)", "evaluator")):
        section = results[key]
        rows = [
            ["data loading (dataflow)", "-", *_cells(section["data"], total)],
            ["step (processing)", "-", *_cells(section["step"], total)],
        ]
        rows += [[h["name"], h["event"], *_cells(h, total)] for h in section["handlers"]]
        out.append(f"\n## {title}: HandlersTimeProfiler\n")
        out.append(
            markdown_table(
                ["what", "event", "total s", "calls", "mean ms", "max ms", "share of training"], rows
            )
        )
    for title, key in (("Trainer", "trainer_events"), ("Evaluator", "evaluator_events")):
        rows = [[name, *_cells(stats, total)] for name, stats in results[key].items() if stats["calls"]]
        out.append(f"\n## {title}: BasicTimeProfiler (per event)\n")
        out.append(
            markdown_table(["what", "total s", "calls", "mean ms", "max ms", "share of training"], rows)
        )
    return "\n".join(out)


def _cells(stats: dict[str, float], total: float) -> list[str]:
    return [
        f"{stats['total_s']:.3f}",
        str(stats["calls"]),
        f"{stats['mean_ms']:.2f}",
        f"{stats['max_ms']:.2f}",
        f"{100 * stats['total_s'] / total:.1f}%",
    ]
