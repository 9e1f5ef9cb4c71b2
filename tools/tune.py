"""Hyper-parameter search with Optuna: every trial is a full run of RECIPE, pruned when unpromising.

    python tools/tune.py RECIPE --trials N --space 'lr=log(1e-5,1e-1)' 'batch_size=choice(32,64,128)' \\
        [the recipe's flags, fixed for every trial] [--metric NAME] [--direction maximize|minimize]

RECIPE is a recipe name (tinyvgg) or a recipe script's path (recipes/tinyvgg.py). The study lives in
a database (default sqlite:///<output-dir>/<study-name>/study.db): rerunning the same command
continues it up to --trials finished trials, a trial killed mid-way is marked failed and run again,
and several tools/tune.py processes (on one machine or many) with the same --storage and
--study-name share it. Each trial is a run folder <output-dir>/<study-name>/trial-NNNN whose
config.json reruns it; the study folder gets trials.csv, best_config.json, study.json and figures/.
Example::

    python tools/tune.py tinyvgg --trials 16 --space 'lr=log(1e-4,1e-2)' 'weight_decay=log(1e-5,1e-1)' \\
        'batch_size=choice(64,128,256)' 'label_smoothing=uniform(0,0.2)' --epochs 3 --pruner median
"""

from __future__ import annotations

import sys
from pathlib import Path

# tools/ holds profile.py, which would shadow the standard library's ``profile`` (cProfile imports it).
_TOOLS = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _TOOLS]
sys.path.insert(0, str(_TOOLS.parent))

from ignite_cv.utils.errors import UserError, exit_on_user_error  # noqa: E402
from ignite_cv.utils.process_exit import end_process  # noqa: E402

PROG = "tools/tune.py"


@exit_on_user_error
def main(argv: list[str] | None = None) -> dict | None:
    argv = sys.argv[1:] if argv is None else list(argv)
    from ignite_cv.tuning.command import require_optuna, run_tuning, tune_parser

    if not argv or argv[0].startswith("-"):
        if not argv or argv[0] in ("-h", "--help"):
            tune_parser(None, __doc__, f"{PROG} RECIPE").print_help()
            print("\nGive a recipe first to see its flags as well: tools/tune.py tinyvgg --help")
            return None
        raise UserError("the recipe comes first", "e.g. tools/tune.py tinyvgg --space 'lr=log(1e-5,1e-1)'")
    require_optuna()
    from ignite_cv.cli import quiet_libraries
    from ignite_cv.recipe_loader import load_recipe_class

    config_cls = load_recipe_class(argv[0])
    quiet_libraries()
    return run_tuning(config_cls, argv[1:], __doc__, f"{PROG} {argv[0]}")


if __name__ == "__main__":
    main()
    end_process()
