"""Frozen-feature baselines: a checkpoint's pooled features fed to logistic regression, an SVM, boosting.

The data set is read as the checkpoint's input (size, channels, normalization from its card); each
split's pooled backbone features are written to ``features_<split>.safetensors``; each classifier is
tuned by a stratified cross-validated grid search on train + val (``--cv-folds``), refit on all of it,
and reported on the test split with tools/evaluate.py's report (``<classifier>/``). ``results.json``
lists every classifier's CV score, chosen setting and test metrics. ``--rebalance balanced`` weights the
classes; ``--rebalance smote`` oversamples minorities inside each training fold (pip install
'ignite_cv[imbalance]'). Examples:

    python tools/features.py pretrained.safetensors --dataset folder --data-root hymenoptera_data.zip \\
        --image-size 96 --classifier all
    python tools/features.py best.safetensors --dataset npz --data-root pneumoniamnist.npz --classifier svm
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
from ignite_cv.utils.options import parse_options  # noqa: E402
from ignite_cv.utils.process_exit import end_process  # noqa: E402

CHECKPOINT = (
    "checkpoint",
    {"help": "an ignite_cv .safetensors checkpoint whose backbone gives the features"},
)


@exit_on_user_error
def main(argv: list[str] | None = None) -> dict:
    """Parse, export the features, fit and report the classifiers; returns results.json's content."""
    from ignite_cv.features.workflow import FeatureOptions, run_features

    options, args = parse_options(FeatureOptions, argv, __doc__, "tools/features.py", [CHECKPOINT])
    if options.threads:
        import torch

        torch.set_num_threads(options.threads)
    quiet_libraries()
    return run_features(args["checkpoint"], options, say=lambda m: print(m, flush=True))


if __name__ == "__main__":
    main()
    end_process()
