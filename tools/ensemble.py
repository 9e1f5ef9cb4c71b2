"""Evaluate an ensemble of checkpoints: the mean (optionally weighted) of their class probabilities.

Checkpoints must share class names; they may differ in architecture and input size: each reads the
split with its own preprocessing (size, channels, centre crop and normalization from its card). The
report folder holds tools/evaluate.py's report and metrics.json (with each member's own metrics) and
``ensemble.json``, a manifest of the checkpoints with their SHA-256 and weights that
``tools/evaluate.py``, ``tools/predict.py`` and ``ignite_cv.load_model`` accept in place of a
checkpoint (a member whose file changed is refused). Examples:

    python tools/ensemble.py resnet.safetensors tinyvgg.safetensors --weights 2 1 \\
        --dataset npz --data-root pneumoniamnist.npz --split test
    python tools/evaluate.py runs/<study>/ensemble.json --dataset npz --data-root pneumoniamnist.npz
"""

from __future__ import annotations

import sys
from pathlib import Path

# tools/ holds profile.py, which would shadow the standard library's ``profile`` (cProfile imports it).
_TOOLS = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _TOOLS]
sys.path.insert(0, str(_TOOLS.parent))

from ignite_cv.cli import quiet_libraries  # noqa: E402
from ignite_cv.utils.errors import exit_on_user_error  # noqa: E402
from ignite_cv.utils.options import build_parser, load_config_values, make_options  # noqa: E402
from ignite_cv.utils.process_exit import end_process  # noqa: E402


@exit_on_user_error
def main(argv: list[str] | None = None) -> dict | None:
    """Parse, evaluate the ensemble, print its metrics and report folder; returns the metrics (rank 0)."""
    from ignite_cv.ensemble.evaluate import EnsembleOptions, evaluate_ensemble

    parser = build_parser(EnsembleOptions, __doc__, "tools/ensemble.py")
    parser.add_argument("checkpoints", nargs="+", help="ignite_cv .safetensors checkpoints (only read)")
    parser.add_argument(
        "--weights", nargs="+", type=float, default=None, help="one weight per checkpoint (default: equal)"
    )
    args = vars(parser.parse_args(argv))
    checkpoints, weights = args.pop("checkpoints"), args.pop("weights")
    values = {}
    config_file = args.pop("config", None)
    if config_file:
        values.update(load_config_values(EnsembleOptions, Path(config_file)))
    values.update(args)
    options = make_options(EnsembleOptions, values)
    if options.threads:
        import torch

        torch.set_num_threads(options.threads)
    quiet_libraries()
    return evaluate_ensemble(checkpoints, weights, options)


if __name__ == "__main__":
    main()
    end_process()
