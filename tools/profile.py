"""Measure a checkpoint's cost: parameters, MACs, latency, throughput, peak memory (and top operators).

The model is rebuilt from the checkpoint alone (its metadata: architecture, pruning history, weights).
Latency is the median and 90th percentile of forward passes after warm-up, at batch 1 and at
``--batch-size``; CUDA events time it on a GPU. ``--compare OTHER`` puts a second checkpoint beside the
first with ratios (second / first); the two are timed in alternating blocks, so both see the same
machine load. Results are printed and saved as JSON and markdown (default: the run folder's
``profile/`` when the checkpoint is in ``<run>/checkpoints/``, else beside the checkpoint); checkpoints
are only read. Examples::

    python tools/profile.py runs/tinyvgg-X/checkpoints/best.safetensors --batch-size 128 --top-ops 10
    python tools/profile.py runs/tinyvgg-X/checkpoints/best.safetensors \\
        --compare runs/prune-Y/pruned.safetensors
"""

from __future__ import annotations

import sys

if __name__ == "profile":
    # A script run from tools/ has this folder first on sys.path, so ``import profile`` (cProfile does it,
    # and torch._dynamo imports cProfile) would find this file instead of the standard library's module.
    # Put the real module in its place; the rest of this file then only defines functions, harmlessly.
    import importlib.util
    import sysconfig

    _spec = importlib.util.spec_from_file_location("profile", sysconfig.get_paths()["stdlib"] + "/profile.py")
    _stdlib_profile = importlib.util.module_from_spec(_spec)
    sys.modules["profile"] = _stdlib_profile
    _spec.loader.exec_module(_stdlib_profile)

import argparse  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, NoReturn  # noqa: E402


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        from ignite_cv.utils.errors import UserError

        raise UserError(message, f"see {self.prog} --help")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(description=__doc__.splitlines()[0], prog="tools/profile.py")
    parser.add_argument("checkpoint", help="an ignite_cv .safetensors checkpoint (only read)")
    parser.add_argument("--compare", metavar="OTHER_CHECKPOINT", help="a second checkpoint to put beside it")
    parser.add_argument("--batch-size", type=int, default=64, help="the larger batch size measured (and 1)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed forward passes before timing")
    parser.add_argument("--repeats", type=int, default=30, help="timed forward passes per batch size")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=10.0,
        help="stop repeating a batch size after this long (at least 5 repeats)",
    )
    parser.add_argument(
        "--top-ops",
        type=int,
        default=0,
        metavar="N",
        help="also list the N operators with the most self time (torch.profiler)",
    )
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0 = torch's default)")
    parser.add_argument("--output-dir", default="", help="where to save the JSON and markdown results")
    return parser


def default_output_dir(checkpoint: Path) -> Path:
    """``<run>/profile`` for a checkpoint in ``<run>/checkpoints/``, else the checkpoint's folder."""
    parent = checkpoint.resolve().parent
    return parent.parent / "profile" if parent.name == "checkpoints" else parent


def measure(paths: list[Path], args: argparse.Namespace, device) -> list[Any]:
    """Rebuild each checkpoint and profile them together (latencies timed interleaved); ModelProfiles."""
    import ignite_cv.pruning  # noqa: F401  (registers the rebuild hook that replays a pruning history)
    from ignite_cv.profiling import profile_models
    from ignite_cv.weights import load_model

    loaded = [(path, *load_model(path, device)) for path in paths]
    batches = (1, args.batch_size) if args.batch_size != 1 else (1,)
    entries = [(path.name, model, (card.in_channels, *card.image_size)) for path, model, card in loaded]
    profiles = profile_models(
        entries, batches, device, args.warmup, args.repeats, args.max_seconds, args.top_ops
    )
    for profile, (path, _, card) in zip(profiles, loaded):
        profile.extra = {
            "checkpoint": str(path),
            "arch": card.arch,
            "arch_args": card.arch_args,
            "pruned": bool(card.extra.get("pruning_history")),
        }
    return profiles


def _main(argv: list[str] | None = None) -> dict:
    import torch

    from ignite_cv.profiling import format_comparison, format_profile
    from ignite_cv.utils.devices import resolve_device
    from ignite_cv.utils.errors import UserError

    args = build_parser().parse_args(argv)
    for name in ("batch_size", "repeats"):
        if getattr(args, name) < 1:
            raise UserError(
                f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}", "pass e.g. 30"
            )
    if args.warmup < 0 or args.top_ops < 0 or args.threads < 0 or args.max_seconds <= 0:
        raise UserError(
            "--warmup, --top-ops and --threads must be >= 0 and --max-seconds > 0", "fix the flag"
        )
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    first_path = Path(args.checkpoint)
    paths = [first_path] + ([Path(args.compare)] if args.compare else [])
    profiles = measure(paths, args, device)
    first = profiles[0]
    result = {"profile": first.to_dict()}
    text = format_profile(first)
    stem = first_path.stem
    if args.compare:
        other_path, second = paths[1], profiles[1]
        result["compare"] = second.to_dict()
        text += "\n" + format_profile(second) + "\nComparison\n\n" + format_comparison(first, second)
        stem = f"{first_path.stem}-vs-{other_path.stem}"
    print(text, flush=True)
    out_dir = Path(args.output_dir) if args.output_dir else default_output_dir(first_path)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"{stem}.profile.json").write_text(json.dumps(result, indent=2) + "\n")
        (out_dir / f"{stem}.profile.md").write_text(text)
    except OSError as err:
        raise UserError(
            f"cannot write the results to {out_dir} ({err.strerror})", "pass a writable --output-dir"
        ) from None
    print(f"saved {out_dir / (stem + '.profile.json')} and .md", flush=True)
    return result


def main(argv: list[str] | None = None) -> dict:
    """The command line: a UserError becomes one ``error:`` line and exit status 2."""
    from ignite_cv.utils.errors import exit_on_user_error

    return exit_on_user_error(_main)(argv)


if __name__ == "__main__":
    _TOOLS = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _TOOLS]
    sys.path.insert(0, str(_TOOLS.parent))
    main()
