"""Options that choose and shape the data (the ``--dataset`` family of flags)."""

from __future__ import annotations

from dataclasses import dataclass

from ignite_cv.options import option

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
        2, "DataLoader worker processes that decode/resize image files, and threads of the image-folder scan"
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
