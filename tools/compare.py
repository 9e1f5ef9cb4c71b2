"""Compare runs: a metrics table (markdown, CSV) and the study figures (PNG) from run or study folders.

Each argument is a run folder (one with ``config.json``) or a study folder holding run folders; any
mix works, including runs made before studies existed. The config fields that differ between the
runs become the table's columns and the figures' names. Examples::

    python tools/compare.py runs/tinyvgg-20250101-120000 runs/mlp-20250101-121500
    python tools/compare.py studies/transfer --output reports/transfer

Writes ``metrics.csv``, ``metrics.md``, ``learning_curves.png``, ``training_time.png``,
``accuracy_by_weights.png``, ``accuracy_by_unfrozen.png``, ``metrics_table.png`` and
``confusion_matrices_test.png`` into ``--output`` (default: ``STUDY/compare`` for one study folder,
else ``./compare``); existing files of those names there are replaced. Run folders are only read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# tools/ holds profile.py, which would shadow the standard library's ``profile`` (cProfile imports it).
_TOOLS = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _TOOLS]
sys.path.insert(0, str(_TOOLS.parent))

from ignite_cv.utils.errors import exit_on_user_error  # noqa: E402
from ignite_cv.utils.options import OneLineErrorParser  # noqa: E402
from ignite_cv.utils.process_exit import end_process  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="compare.py", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("runs", nargs="+", metavar="RUN_OR_STUDY", help="run folders and/or study folders")
    parser.add_argument("--output", default=None, help="folder for the table and figures")
    parser.add_argument(
        "--metric", default="accuracy", help="test metric of the accuracy figures (default: accuracy)"
    )
    return parser


@exit_on_user_error
def main(argv: list[str] | None = None):
    args = build_parser().parse_args(argv)
    from ignite_cv.studies.compare import compare_runs

    result = compare_runs(args.runs, args.output, metric=args.metric)
    print(result.table.to_markdown(), end="")
    for note in result.notes:
        print(f"note: {note}")
    print(f"{len(result.runs)} runs compared; varied fields: {', '.join(result.fields) or 'none'}")
    print(f"output folder: {result.output_dir}")
    return result


if __name__ == "__main__":
    main()
    end_process()
