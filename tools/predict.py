"""Predict classes of new images with a trained checkpoint and write them to a CSV.

INPUT is any mix of image files, folders (searched recursively) and .zip files of images. Each image
is preprocessed as the checkpoint's card says (channels, size, crop, normalization) and decoded in
DataLoader workers; batches run on the device. Two-class models decide at the threshold stored in
the checkpoint (``card.extra["threshold"]``, default 0.5). The CSV has one row per file, sorted by
path: the predicted class, its probability, every class's probability (and ``--top-k`` columns);
unreadable files are listed with ``status`` ``skipped`` and the reason (``--strict`` stops instead).
The CSV is written atomically, after every image was predicted. Examples::

    python tools/predict.py runs/RUN/checkpoints/best_*.safetensors photos/ --output predictions.csv
    python tools/predict.py best.safetensors a.jpg b.png scans.zip --top-k 3 --device cuda
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# tools/ holds profile.py, which would shadow the standard library's ``profile`` (cProfile imports it).
_TOOLS = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _TOOLS]
sys.path.insert(0, str(_TOOLS.parent))

from ignite_cv.utils.errors import UserError, exit_on_user_error  # noqa: E402
from ignite_cv.utils.options import OneLineErrorParser  # noqa: E402
from ignite_cv.utils.process_exit import end_process  # noqa: E402

#: Skipped files printed on the console (all of them are in the CSV).
SHOW_SKIPPED = 20


def default_workers() -> int:
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(description=__doc__.splitlines()[0], prog="tools/predict.py")
    parser.add_argument(
        "model",
        help="an ignite_cv .safetensors checkpoint, or an ensemble manifest .json (tools/ensemble.py)",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or .zip files")
    parser.add_argument("--output", default="predictions.csv", help="CSV to write (default: predictions.csv)")
    parser.add_argument("--top-k", type=int, default=0, help="add the K most probable classes as columns")
    parser.add_argument("--strict", action="store_true", help="stop at the first unreadable image")
    parser.add_argument("--batch-size", type=int, default=64, help="images per batch (default: 64)")
    parser.add_argument(
        "--workers", type=int, default=default_workers(), help="decoding processes (default: %(default)s)"
    )
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:N")
    parser.add_argument("--amp", default="none", choices=("none", "bf16", "fp16"), help="autocast dtype")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0 = torch's default)")
    cam = parser.add_argument_group("class activation maps (needs the explain package)")
    cam.add_argument(
        "--cam", default="", metavar="METHOD", help="write a CAM overlay per image, e.g. gradcam"
    )
    cam.add_argument("--cam-dir", default="", help="folder of the overlays (default: <output>-cam/)")
    return parser


@exit_on_user_error
def main(argv: list[str] | None = None):
    """Parse, predict, write the CSV; returns the PredictionSet."""
    args = build_parser().parse_args(argv)
    if args.top_k < 0 or args.batch_size < 1 or args.workers < 0 or args.threads < 0:
        raise UserError("--top-k, --workers and --threads must be >= 0, --batch-size >= 1", "fix the flag")
    output = Path(args.output)
    if output.is_dir():
        raise UserError(f"--output {output} is a folder", "pass a file name such as predictions.csv")
    if args.cam_dir and not args.cam:
        raise UserError("--cam-dir without --cam", "add --cam METHOD (e.g. gradcam) or drop --cam-dir")
    import torch

    from ignite_cv.inference.loading import load_predictor
    from ignite_cv.inference.table import write_predictions_csv

    if args.threads:
        torch.set_num_threads(args.threads)
    predictor = load_predictor(args.model, device=args.device, amp=args.amp)
    on_batch = None
    if args.cam:
        from ignite_cv.inference.cam import CamWriter

        cam_dir = Path(args.cam_dir) if args.cam_dir else output.with_name(f"{output.stem}-cam")
        on_batch = CamWriter(predictor, args.cam, cam_dir)  # refuses here when explain is missing
    print(
        f"model: {predictor.card.arch}, {len(predictor.class_names)} classes, "
        f"input {predictor.preprocessing.describe()}, decision: {predictor.rule.describe()}",
        flush=True,
    )
    start = time.perf_counter()
    result = predictor.predict(
        args.inputs,
        batch_size=args.batch_size,
        workers=args.workers,
        strict=args.strict,
        progress=True,
        on_batch=on_batch,
    )
    seconds = time.perf_counter() - start
    rows = write_predictions_csv(output, result, args.top_k)
    for left in sorted(result.skipped, key=lambda x: x.source)[:SHOW_SKIPPED]:
        print(f"skipped {left.source}: {left.reason}", file=sys.stderr, flush=True)
    if len(result.skipped) > SHOW_SKIPPED:
        print(f"... and {len(result.skipped) - SHOW_SKIPPED} more skipped (see the CSV)", file=sys.stderr)
    rate = len(result) / seconds if seconds > 0 else float("inf")
    print(
        f"{len(result)} images predicted, {len(result.skipped)} skipped, in {seconds:.2f}s "
        f"({rate:.1f} images/s); {rows} rows written to {output}",
        flush=True,
    )
    if on_batch is not None:
        print(f"{len(on_batch.written)} CAM overlays written to {on_batch.out_dir}", flush=True)
    return result


if __name__ == "__main__":
    main()
    end_process()
