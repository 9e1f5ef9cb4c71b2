"""Options that choose and shape the data (the ``--dataset`` family of flags)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from ignite_cv.utils.limits import MAX_IMAGE_SIDE
from ignite_cv.utils.options import option

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10", "cifar100", "folder", "npz")


@dataclass
class DataOptions:
    dataset: str = option("digits", "data set", choices=DATASETS)
    data_root: str = option(
        "",
        "where the data lives: a folder (or .zip) of class sub-folders for 'folder', an .npz file for 'npz', "
        "a folder holding (or receiving) the raw files for the torchvision data sets; unused for 'digits'",
    )
    val_fraction: float = option(
        0.1,
        "fraction of train held out (stratified, seeded by --seed) for validation when the source has no "
        "val split; a folder with only train/ and val/ tests on val/ and validates on this part of train/",
        minimum=0.001,
        maximum=0.99,
    )
    image_size: int = option(
        0,
        "resize images to this square size in pixels (0 = keep the source's size; "
        "image folders default to 224)",
        minimum=0,
        maximum=MAX_IMAGE_SIDE,
    )
    center_crop: bool = option(
        False,
        "resize the shorter side to --image-size, then center-crop a square "
        "(default: resize to a square, which may change the aspect ratio)",
    )
    channels: int = option(
        0, "image channels: 1 (grey) or 3 (RGB); 0 = the source's own (image folders: 3)", choices=(0, 1, 3)
    )
    workers: int = option(
        2,
        "image folders: 0 decodes in the main process; otherwise the one decode pass uses every core "
        "and this many DataLoader workers decode files that stay on disk (a folder too large for "
        "memory with no cache)",
        minimum=0,
    )
    data_on_device: str = option(
        "auto",
        "keep whole splits as uint8 on the model's device and skip the "
        "DataLoader (auto: when they fit a memory budget)",
        choices=("auto", "yes", "no"),
    )
    strict_data: bool = option(
        False, "stop on the first unreadable image file instead of skipping it (skipped files are listed)"
    )
    train_on_val: bool = option(
        False,
        "also train on the validation split (a final refit of chosen settings); validation metrics then "
        "describe training data, so the test split is the only honest score",
    )
    cache_dir: str = option(
        "",
        "folder of the decoded-image cache of image folders ('' = <output-dir>/.data-cache; tools "
        "without --output-dir cache nothing unless given one); a second run on unchanged files "
        "decodes nothing",
    )
    no_cache: bool = option(False, "decode image folders without reading or writing the decoded-image cache")


SAMPLERS = ("none", "balanced")


@dataclass
class SamplerOptions:
    """The order of the training samples (training only; evaluation always sees each sample once)."""

    sampler: str = option(
        "none",
        "training order: none = every sample once per epoch (a seeded permutation); balanced = as many "
        "draws per epoch, with replacement, every class equally likely (seeded, the same stream on every "
        "process, resumable mid-epoch)",
        choices=SAMPLERS,
    )


def add_data_arguments(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The data flags a tool needs to reload the data a checkpoint was trained on (as in training)."""
    data = parser.add_argument_group("data (the set the model was trained on)")
    data.add_argument("--dataset", required=True, choices=DATASETS)
    data.add_argument("--data-root", default="", help="where the data lives (as in training)")
    data.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="as in training: share of train held out for validation when the source has none",
    )
    data.add_argument("--center-crop", action="store_true", help="as in training, for image folders")
    data.add_argument("--workers", type=int, default=0, help="decoding workers for image folders")
    data.add_argument(
        "--seed", type=int, default=0, help="as in training: it chose the validation split and data order"
    )
    return data


@dataclass
class FoldOptions:
    """Stratified k-fold cross-validation over train + val (``ignite_cv/training/folds.py``)."""

    folds: int = option(
        0,
        "stratified k-fold cross-validation: K runs, each validating on one K-th of train+val pooled "
        "(the test split is never in a fold), in one study folder (0 = off)",
        minimum=0,
    )
    fold_seed: int = option(0, "seed of the fold assignment (independent of --seed)")
