"""Run a study: every combination of a grid of config values as one run folder, in turn.

    python tools/study.py RECIPE[,RECIPE...] --grid FIELD=V1,V2 [FIELD=...] --output-dir STUDY [flags]

RECIPE is a recipe of recipes/ (``tinyvgg``, or its path); several, comma-separated, are the study's
``recipe`` axis (``mlp,tinyvgg``: model families compared with the same grid). ``--grid`` takes one
or more axes: ``FIELD=V1,V2`` (any option of the recipe, dashes or underscores), or fields that vary
together joined by ``+`` (``mode+unfreeze=scratch+all,extract+all,finetune+1,finetune+all``). Every
other flag is passed to every run that has it (``--epochs 3 --dataset digits``, ``--config FILE``).
Each combination is one run folder under STUDY; ``study.json`` and ``study.csv`` list them with their
test metrics, best epoch, times and parameters. Rerun the same command after a kill: finished runs
are skipped, an interrupted one resumes from its training state. Add values or fields and rerun:
only the new combinations train. Nothing finished is ever retrained, overwritten or deleted.

    python tools/study.py mlp,tinyvgg --grid init=kaiming,xavier --epochs 5 --output-dir studies/digits
    python tools/study.py resnet_finetune --grid model+weights=resnet18+r18.safetensors,resnet18+none \\
        mode+unfreeze=scratch+all,extract+all,finetune+1,finetune+all --dataset folder \\
        --data-root hymenoptera_data.zip --image-size 112 --epochs 4 --warmup-epochs 2 --output-dir studies/tl
    python tools/compare.py studies/tl            # the comparison figures, into studies/tl/compare/
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

# tools/ holds profile.py, which would shadow the standard library's ``profile`` (cProfile imports it).
_TOOLS = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _TOOLS]
sys.path.insert(0, str(_TOOLS.parent))

from ignite_cv.utils.errors import UserError, exit_on_user_error  # noqa: E402
from ignite_cv.utils.options import OneLineErrorParser  # noqa: E402
from ignite_cv.utils.process_exit import end_process  # noqa: E402

RECIPES = _TOOLS.parent / "recipes"


def load_recipe_class(spec: str) -> type:
    """The config class (a ``TrainConfig`` dataclass) of recipe ``spec``: a name in recipes/ or a path."""
    from ignite_cv.config import TrainConfig

    path = Path(spec) if spec.endswith(".py") else RECIPES / f"{spec}.py"
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in RECIPES.glob("*.py")))
        raise UserError(f"no recipe {spec!r} ({path} does not exist)", f"choose one of: {names}")
    name = f"ignite_cv_recipe_{path.stem}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # dataclasses look their module up
    module_spec.loader.exec_module(module)
    classes = [
        v
        for v in vars(module).values()
        if isinstance(v, type) and dataclasses.is_dataclass(v) and issubclass(v, TrainConfig)
        if v.__module__ == name
    ]
    if len(classes) != 1:
        raise UserError(f"{path} defines {len(classes)} recipe config classes", "pass a file of recipes/")
    return classes[0]


def build_parser() -> OneLineErrorParser:
    parser = OneLineErrorParser(
        prog="tools/study.py", description=__doc__.split("\n\n")[0], allow_abbrev=False, add_help=True
    )
    parser.add_argument(
        "recipes", metavar="RECIPE[,RECIPE...]", help="recipe(s) of recipes/, comma-separated"
    )
    parser.add_argument(
        "--grid",
        nargs="+",
        action="extend",
        default=[],
        metavar="FIELD=V1,V2",
        help="axes of the grid: FIELD=V1,V2, or F1+F2=A1+A2,B1+B2 for fields that vary together",
    )
    parser.add_argument(
        "--output-dir", required=True, help="the study folder (created; reused to resume or extend)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would train, skip or resume; train nothing"
    )
    return parser


@exit_on_user_error
def main(argv: list[str] | None = None) -> dict | None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args, rest = build_parser().parse_known_args(argv)
    from ignite_cv.cli import quiet_libraries
    from ignite_cv.studies.grid import check_not_fixed, fixed_values, parse_axis, split_flags
    from ignite_cv.studies.runner import plan_study, run_study, study_table

    specs = [s.strip() for s in args.recipes.split(",") if s.strip()]
    classes = {}
    for spec in specs:
        cls = load_recipe_class(spec)
        name = cls().recipe
        if name in classes:
            raise UserError(f"recipe {name} is given twice", "list each recipe once")
        classes[name] = cls
    if not classes:
        raise UserError("no recipe given", "pass e.g. tinyvgg or mlp,tinyvgg first")
    axes = [parse_axis(spec) for spec in args.grid]
    chunks = split_flags(rest)
    check_not_fixed(axes, chunks)
    fixed = fixed_values(classes, chunks)
    plan = plan_study(args.output_dir, classes, axes, fixed, argv)
    counts = plan.counts()
    print(
        f"study {plan.study_dir}: {len(plan.runs)} runs ({counts['skip']} finished, "
        f"{counts['resume']} to resume, {counts['train']} to train)",
        flush=True,
    )
    if args.dry_run:
        for run in plan.runs:
            print(f"  [{run.index + 1}] {run.name}: {run.action}" + (f" ({run.note})" if run.note else ""))
        return None
    quiet_libraries()
    data = run_study(plan, say=lambda line: print(line, flush=True))
    table = study_table(plan.study_dir, data["runs"], data["fields"])
    print(table.to_markdown(), end="")
    print(
        f"study folder: {plan.study_dir} (study.csv, study.json); "
        f"compare: python tools/compare.py {plan.study_dir}"
    )
    failed = [r for r in data["runs"] if r.get("status") == "failed"]
    if failed:
        raise UserError(
            f"{len(failed)} of {len(data['runs'])} runs failed: "
            + "; ".join(f"{r['run']}: {r.get('error', '')}" for r in failed),
            "fix their settings and rerun the study (finished runs are kept)",
        )
    return data


if __name__ == "__main__":
    main()
    end_process()
