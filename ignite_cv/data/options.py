"""Options that choose and shape the data (the ``--dataset`` family of flags)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

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
    )
    image_size: int = option(
        0,
        "resize images to this square size in pixels (0 = keep the source's size; "
        "image folders default to 224)",
    )
    center_crop: bool = option(
        False,
        "resize the shorter side to --image-size, then center-crop a square "
        "(default: resize to a square, which may change the aspect ratio)",
    )
    channels: int = option(0, "image channels: 1 (grey) or 3 (RGB); 0 = the source's own (image folders: 3)")
    workers: int = option(
        2,
        "image folders: 0 decodes in the main process; otherwise the one decode pass uses every core "
        "and this many DataLoader workers decode files that stay on disk (a folder too large for "
        "memory with no cache)",
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
    cache_dir: str = option(
        "",
        "folder of the decoded-image cache of image folders ('' = <output-dir>/.data-cache; tools "
        "without --output-dir cache nothing unless given one); a second run on unchanged files "
        "decodes nothing",
    )
    no_cache: bool = option(False, "decode image folders without reading or writing the decoded-image cache")


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
