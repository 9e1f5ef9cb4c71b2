"""The pruning report: the before/after table of test metrics, size, MACs and latency (``pruning.md``)."""

from __future__ import annotations

from typing import Any

from ignite_cv.utils.text import markdown_table

HEADER = ["", "before", "after", "after vs before"]

TABLE_ROWS = (
    ("test accuracy", "test_accuracy", "{:.4f}"),
    ("test loss", "test_loss", "{:.4f}"),
    ("parameters", "params", "{:,}"),
    ("MACs (batch 1)", "macs", "{:,}"),
)


def comparison_rows(before: dict[str, Any], after: dict[str, Any]) -> list[list[str]]:
    """Rows ``[quantity, before, after, after/before]`` of the before/after table."""
    rows = [list(r) for r in _static_rows(before, after)]
    batches = sorted(
        {
            int(k[len("latency_b") : -3])
            for k in before
            if k.startswith("latency_b") and k.endswith("_ms") and "_p90" not in k
        }
    )
    for batch in batches:
        rows += _static_rows(
            before,
            after,
            (
                (f"latency batch {batch}, median (ms)", f"latency_b{batch}_ms", "{:.3f}"),
                (f"latency batch {batch}, p90 (ms)", f"latency_b{batch}_p90_ms", "{:.3f}"),
                (f"throughput batch {batch} (img/s)", f"throughput_b{batch}", "{:,.1f}"),
            ),
        )
    return rows


def _static_rows(before, after, spec=TABLE_ROWS) -> list[list[str]]:
    rows = []
    for label, key, fmt in spec:
        b, a = before.get(key), after.get(key)
        if b is None or a is None:
            continue
        ratio = f"{a / b:.3f}×" if b else "-"
        if key.startswith("test_"):
            ratio = f"{(a - b) * (100 if 'accuracy' in key else 1):+.2f}{' pts' if 'accuracy' in key else ''}"
        rows.append([label, fmt.format(b), fmt.format(a), ratio])
    return rows


def pruning_markdown(
    title: str, device: str, threads: int, warmup: int, repeats: int, rows: list[list[str]]
) -> str:
    """``pruning.md``: a title, how latency was measured, and the before/after table."""
    return (
        f"# {title}\n\n"
        f"Latency on {device} ({threads} threads), both models timed in alternating blocks: median of up to "
        f"{repeats} repeats after {warmup} warm-up passes. MACs are torch-pruning's count for one image.\n\n"
        + markdown_table(HEADER, rows)
    )
