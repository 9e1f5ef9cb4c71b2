"""CPU training-step speed of a registry model: memory format × malloc settings, each in a fresh process.

Two settings change a CPU step's speed without changing its result: the memory format of the model
and its input (``--channels-last``) and glibc malloc's thresholds (``ignite_cv/allocator.py``, applied
by every run unless ``IGNITE_CV_SYSTEM_MALLOC=1``). Malloc's settings hold for a whole process, so
each variant runs in its own child process: a model from the registry, AdamW, seeded uint8 batches
converted and normalized as the batch pipeline does, ``--warmup`` untimed steps, then ``--steps``
timed ones. Variants alternate for ``--repeats`` rounds; printed: the median ms per step, the minor
page faults and system CPU time of the timed steps, and each variant's speed-up over NCHW with the
system's malloc.

    python benchmarks/cpu_speed.py                          # TinyVGG (32), batch 128, 1×28×28
    python benchmarks/cpu_speed.py --model mlp --batch-size 512
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = [  # (label, channels_last, tuned malloc)
    ("NCHW, system malloc", False, False),
    ("NCHW, tuned malloc", False, True),
    ("channels_last, system malloc", True, False),
    ("channels_last, tuned malloc", True, True),
]


def child(args: argparse.Namespace) -> None:
    """Time ``args.steps`` training steps in this process; print one JSON line."""
    sys.path.insert(0, str(ROOT))
    from ignite_cv.utils.allocator import tune_cpu_allocator

    tuned = tune_cpu_allocator()
    import torch
    import torch.nn.functional as F

    from ignite_cv.models import build_model

    torch.manual_seed(0)
    model = build_model(args.model, 1, (args.size, args.size), 10, **json.loads(args.model_args))
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    shape = (args.batch_size, 1, args.size, args.size)
    batches = [torch.randint(0, 256, shape, dtype=torch.uint8, generator=g) for _ in range(4)]
    labels = torch.randint(0, 10, (args.batch_size,), generator=g)

    def step(i: int) -> None:
        x = batches[i % len(batches)].float().div_(255.0).sub_(0.5).div_(0.25)
        if args.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        loss = F.cross_entropy(model(x), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for i in range(args.warmup):
        step(i)
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for i in range(args.steps):
        step(i)
    seconds, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "ms_per_step": 1000 * seconds / args.steps,
                "minor_faults": after.ru_minflt - before.ru_minflt,
                "system_s": after.ru_stime - before.ru_stime,
                "tuned": tuned,
            }
        )
    )


def run_variant(args: argparse.Namespace, channels_last: bool, tuned: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env["IGNITE_CV_SYSTEM_MALLOC"] = "0" if tuned else "1"
    command = [sys.executable, __file__, "--child", *_common_flags(args)]
    if channels_last:
        command.append("--channels-last")
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _common_flags(args: argparse.Namespace) -> list[str]:
    return [
        f"--model={args.model}",
        f"--model-args={args.model_args}",
        f"--batch-size={args.batch_size}",
        f"--size={args.size}",
        f"--steps={args.steps}",
        f"--warmup={args.warmup}",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tinyvgg", help="a registry name")
    parser.add_argument("--model-args", default='{"hidden_units": 32}', help="JSON architecture arguments")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--size", type=int, default=28, help="image side, pixels (1 channel)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per process")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per process")
    parser.add_argument("--repeats", type=int, default=3, help="rounds over the variants")
    parser.add_argument("--channels-last", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return
    # An MLP has no memory format to choose.
    variants = [v for v in VARIANTS if not v[1]] if args.model == "mlp" else VARIANTS
    results: dict[str, list[dict]] = {label: [] for label, _, _ in variants}
    for _ in range(args.repeats):
        for label, channels_last, tuned in variants:
            results[label].append(run_variant(args, channels_last, tuned))
    print(
        f"{args.model} {args.model_args}, batch {args.batch_size}, 1×{args.size}×{args.size}, "
        f"{args.steps} steps × {args.repeats} processes per variant, {os.cpu_count()} CPUs"
    )
    base = statistics.median(r["ms_per_step"] for r in results[variants[0][0]])
    for label, _, _ in variants:
        runs = results[label]
        ms = statistics.median(r["ms_per_step"] for r in runs)
        faults = statistics.median(r["minor_faults"] for r in runs)
        system = statistics.median(r["system_s"] for r in runs)
        applied = "" if all(r["tuned"] for r in runs) or "system" in label else " (not applied here)"
        print(
            f"  {label:30s} {ms:8.2f} ms/step  {faults:9,.0f} page faults  {system:5.2f} s system"
            f"  speed-up {base / ms:5.2f}×{applied}"
        )


if __name__ == "__main__":
    main()
