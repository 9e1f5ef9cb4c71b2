"""Text for people: markdown tables, compact counts, the first line of an error."""

from __future__ import annotations

from collections.abc import Sequence


def markdown_table(header: Sequence[object], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table (also readable as plain text), columns padded to their width."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[object]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

    separator = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), separator, *map(line, rows)]) + "\n"


def human_count(n: float) -> str:
    """12_345_678 → '12.3M' (K, M, G: powers of 1000; 3 significant digits)."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n:.0f}"


def first_line(err: BaseException) -> str:
    """The first non-empty line of an exception's message (or its type's name)."""
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
