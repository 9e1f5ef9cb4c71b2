"""Print a data set's training-split statistics: exact per-channel mean/std, and per-class counts per split.

The mean and std are those ``--normalize meanstd`` uses: of the training split as the run defines it
(after the validation hold-out, which depends on ``--seed`` and ``--val-fraction``), in [0, 1] units,
population std (ddof 0), computed exactly from uint8 histograms. Example::

    python tools/dataset_stats.py --dataset fashion-mnist --data-root ../shared/data/fashion-mnist
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ignite_cv.config import SeedOptions  # noqa: E402
from ignite_cv.data.options import DataOptions  # noqa: E402
from ignite_cv.data.splits import DataBundle, Split  # noqa: E402
from ignite_cv.data.stats import channel_stats, class_counts, fingerprint_split, split_batches  # noqa: E402
from ignite_cv.utils.errors import exit_on_user_error  # noqa: E402
from ignite_cv.utils.options import parse_options  # noqa: E402
from ignite_cv.utils.process_exit import end_process  # noqa: E402


@dataclass
class StatsOptions(SeedOptions, DataOptions):
    """The data flags of training, and the seed that chose the validation hold-out."""


def training_batches(bundle: DataBundle, options: StatsOptions) -> Iterator:
    """uint8 batches of the training split: slices in memory, or files decoded in DataLoader workers."""
    split: Split = bundle.train
    if split.in_memory:
        return split_batches(split)
    from ignite_cv.data.loaders import build_loader

    loader = build_loader(
        split,
        batch_size=256,
        train=False,
        device="cpu",
        seed=options.seed,
        workers=options.workers,
        image_size=bundle.image_size,
        channels=bundle.channels,
        center_crop=options.center_crop,
    )
    return (images for images, _ in loader)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    options = parse_options(StatsOptions, argv, __doc__, "tools/dataset_stats.py")
    from ignite_cv.data.sources import load_data

    bundle = load_data(options, options.seed)
    height, width = bundle.image_size
    splits = {"train": bundle.train, "val": bundle.val, "test": bundle.test}
    sizes = ", ".join(f"{name} {len(split)}" for name, split in splits.items())
    print(
        f"data set {bundle.name}: {bundle.channels}×{height}×{width}, {bundle.num_classes} classes ({sizes})"
    )
    for problem in bundle.skipped:
        print(f"skipped: {problem}")
    decode = (
        None
        if bundle.train.in_memory
        else {"size": bundle.image_size, "channels": bundle.channels, "center_crop": options.center_crop}
    )
    print(f"training split fingerprint {fingerprint_split(bundle.train, decode)[:16]}")
    mean, std, images = channel_stats(training_batches(bundle, options))
    print(f"per-channel statistics of the training split ({images} images, values in [0, 1]):")
    print(f"{'channel':>8} {'mean':>10} {'std':>10}")
    for c, (m, s) in enumerate(zip(mean, std)):
        print(f"{c:>8} {m:>10.6f} {s:>10.6f}")
    counts = {name: class_counts(split, bundle.num_classes) for name, split in splits.items()}
    width_name = max(len("class"), *(len(n) for n in bundle.class_names))
    print("per-class counts:")
    print(f"{'class':<{width_name}} " + " ".join(f"{name:>7}" for name in splits))
    for k, class_name in enumerate(bundle.class_names):
        print(f"{class_name:<{width_name}} " + " ".join(f"{counts[name][k]:>7}" for name in splits))
    print(f"{'total':<{width_name}} " + " ".join(f"{len(split):>7}" for split in splits.values()))


if __name__ == "__main__":
    main()
    end_process()
