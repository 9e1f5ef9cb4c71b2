"""Where a saved model looks: Grad-CAM, Grad-CAM++ or Score-CAM maps (and feature maps) of images.

The model, its input size, channels, centre crop and normalization come from the checkpoint alone. INPUT is
any mix of image files, folders (recursive) and zips, or a split of a data set (``--dataset``). Per image:
the original, the heat map and the titled overlay; one ``grid.png``; the raw maps in ``maps.safetensors``
(float32, the model's input size, in ``index.csv`` order) and ``index.csv`` (written last). Unreadable
files are listed in ``skipped.txt`` and skipped. Examples::

    python tools/explain.py runs/RUN/checkpoints/best_*.safetensors xrays/ --method gradcam --output cams/
    python tools/explain.py best.safetensors --dataset npz --data-root pneumoniamnist.npz --split test \\
        --limit 64 --method scorecam --class true --output cams-test/
    python tools/explain.py best.safetensors --list-layers
    python tools/explain.py best.safetensors bee.jpg --feature-maps layer1,layer2 --output fmaps/
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# tools/ holds profile.py, which would shadow the standard library's ``profile`` (cProfile imports it).
_TOOLS = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _TOOLS]
sys.path.insert(0, str(_TOOLS.parent))

from ignite_cv.utils.errors import UserError, exit_on_user_error  # noqa: E402
from ignite_cv.utils.options import OneLineErrorParser  # noqa: E402
from ignite_cv.utils.process_exit import end_process  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    from ignite_cv.data.options import DATASETS
    from ignite_cv.explain.cam import METHODS
    from ignite_cv.explain.inputs import SPLITS

    parser = OneLineErrorParser(description=__doc__.splitlines()[0], prog="tools/explain.py")
    parser.add_argument("checkpoint", help="an ignite_cv .safetensors checkpoint (only read)")
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="image files, folders (recursive) or zips")
    parser.add_argument("--method", default="gradcam", choices=METHODS, help="CAM method (default: gradcam)")
    parser.add_argument(
        "--class",
        dest="class_choice",
        default="predicted",
        help="class to explain: predicted (default), true (from --dataset or class-named folders) or a name",
    )
    parser.add_argument("--target-layer", default="auto", help="layer of the maps (default: auto)")
    parser.add_argument("--list-layers", action="store_true", help="print the candidate layers and exit")
    parser.add_argument(
        "--feature-maps", default="", metavar="LAYER[,LAYER...]", help="also draw these layers' activations"
    )
    parser.add_argument("--output", default="", help="new (or empty) output folder")
    data = parser.add_argument_group("a data set split as the input (instead of INPUT)")
    data.add_argument(
        "--dataset", default="", choices=("", *DATASETS), help="data set the model was trained on"
    )
    data.add_argument("--data-root", default="", help="where the data lives (as in training)")
    data.add_argument("--split", default="test", choices=SPLITS, help="split to explain (default: test)")
    data.add_argument("--limit", type=int, default=0, help="the first N images of the split (default: all)")
    data.add_argument("--val-fraction", type=float, default=0.1, help="as in training")
    data.add_argument("--seed", type=int, default=0, help="as in training (it chose the validation split)")
    run = parser.add_argument_group("running")
    run.add_argument("--batch-size", type=int, default=32, help="images per pass (default: 32)")
    run.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:N")
    run.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0 = torch's default)")
    return parser


@exit_on_user_error
def main(argv: list[str] | None = None) -> dict | None:
    """Parse and explain; returns the summary (None for --list-layers)."""
    args = build_parser().parse_args(argv)
    import torch

    from ignite_cv.explain.run import DatasetInput, ExplainOptions, describe_layers, explain_checkpoint
    from ignite_cv.utils.devices import resolve_device

    if args.threads < 0:
        raise UserError("--threads must be >= 0", "pass 0 for torch's default")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.list_layers:
        from ignite_cv.weights import load_model

        model, card = load_model(args.checkpoint, resolve_device(args.device))
        print(describe_layers(model, card))
        return None
    if not args.output:
        raise UserError("--output is required", "pass a new folder for the results, e.g. --output cams/")
    if bool(args.inputs) == bool(args.dataset):
        raise UserError("pass images (files, folders, zips) or --dataset, one of the two", "see --help")
    dataset = None
    if args.dataset:
        from ignite_cv.data.options import DataOptions

        options = DataOptions(dataset=args.dataset, data_root=args.data_root, val_fraction=args.val_fraction)
        options.workers = 0
        dataset = DatasetInput(options, args.split, args.limit, args.seed)
    options = ExplainOptions(
        method=args.method,
        class_choice=args.class_choice,
        target_layer=args.target_layer,
        batch_size=args.batch_size,
        device=args.device,
        feature_layers=[name.strip() for name in args.feature_maps.split(",") if name.strip()],
    )
    paths = list(args.inputs) if args.inputs else None
    return explain_checkpoint(args.checkpoint, args.output, options, paths, dataset)


if __name__ == "__main__":
    main()
    end_process()
