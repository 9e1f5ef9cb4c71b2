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

from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

CHECKPOINT = ("checkpoint", {"help": "an ignite_cv .safetensors checkpoint (only read)"})


def _options_class():
    """The tool's options, composed of option fields (built after sys.path is set up)."""
    from ignite_cv.utils.options import option

    @dataclass
    class ProfileToolOptions:
        compare: str = option("", "a second checkpoint to put beside the first, with ratios (second / first)")
        batch_size: int = option(64, "the larger batch size measured (and 1)", minimum=1)
        device: str = option("cpu", "device: cpu, cuda, cuda:N or auto")
        warmup: int = option(5, "untimed forward passes before timing", minimum=0)
        repeats: int = option(30, "timed forward passes per batch size", minimum=1)
        max_seconds: float = option(
            10.0, "stop repeating a batch size after this long (at least 5 repeats)", minimum=1e-3
        )
        top_ops: int = option(
            0, "also list the N operators with the most self time (torch.profiler)", minimum=0
        )
        threads: int = option(0, "CPU threads for torch (0 = torch's default)", minimum=0)
        output_dir: str = option("", "where to save the JSON and markdown results (default: see above)")
        layers: bool = option(
            False, "also print the per-layer table: output shape, parameters, trainable, MACs"
        )
        depth: int = option(0, "--layers: show modules down to this depth (0 = all)", minimum=0)

    return ProfileToolOptions


def default_output_dir(checkpoint: Path) -> Path:
    """``<run>/profile`` for a checkpoint in ``<run>/checkpoints/``, else the checkpoint's folder."""
    parent = checkpoint.resolve().parent
    return parent.parent / "profile" if parent.name == "checkpoints" else parent


def measure(paths: list[Path], options, device) -> list[Any]:
    """Rebuild each checkpoint and profile them together (latencies timed interleaved); ModelProfiles."""
    from ignite_cv.profile.model import profile_models
    from ignite_cv.weights import load_model

    loaded = [(path, *load_model(path, device)) for path in paths]
    batches = (1, options.batch_size) if options.batch_size != 1 else (1,)
    entries = [(path.name, model, (card.in_channels, *card.image_size)) for path, model, card in loaded]
    profiles = profile_models(
        entries, batches, device, options.warmup, options.repeats, options.max_seconds, options.top_ops
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

    from ignite_cv.profile.report import format_comparison, format_profile
    from ignite_cv.utils.atomic import write_json_atomic, write_text_atomic
    from ignite_cv.utils.devices import resolve_device
    from ignite_cv.utils.errors import UserError
    from ignite_cv.utils.options import parse_options

    options, args = parse_options(_options_class(), argv, __doc__, "tools/profile.py", [CHECKPOINT])
    if options.threads:
        torch.set_num_threads(options.threads)
    device = resolve_device(options.device)
    first_path = Path(args["checkpoint"])
    paths = [first_path] + ([Path(options.compare)] if options.compare else [])
    profiles = measure(paths, options, device)
    first = profiles[0]
    result = {"profile": first.to_dict()}
    text = format_profile(first)
    stem = first_path.stem
    if options.compare:
        other_path, second = paths[1], profiles[1]
        result["compare"] = second.to_dict()
        text += "\n" + format_profile(second) + "\nComparison\n\n" + format_comparison(first, second)
        stem = f"{first_path.stem}-vs-{other_path.stem}"
    if options.layers:
        from ignite_cv.profile.layers import model_summary_text
        from ignite_cv.weights import load_model

        for path in paths:
            model, card = load_model(path, device)
            shape = (card.in_channels, *card.image_size)
            text += f"\nLayers of {path.name}\n\n" + model_summary_text(
                model, shape, max_depth=options.depth or None
            )
    print(text, flush=True)
    out_dir = Path(options.output_dir) if options.output_dir else default_output_dir(first_path)
    try:
        write_json_atomic(out_dir / f"{stem}.profile.json", result)
        write_text_atomic(out_dir / f"{stem}.profile.md", text)
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
    from ignite_cv.utils.process_exit import end_process

    end_process()
