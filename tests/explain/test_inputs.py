"""Inputs: files, recursive folders and zips in order, labels from class folders, skipped files listed."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
from PIL import Image

from ignite_cv.data.options import DataOptions
from ignite_cv.explain.inputs import ImageItem, collect_dataset, collect_files, short_name
from ignite_cv.utils.errors import UserError
from tests.explain.patterns import meanstd_card

CLASSES = ["ants", "bees"]


def _png(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(path)
    return path


def test_folders_are_read_recursively_and_class_folders_give_labels(tmp_path):
    _png(tmp_path / "data" / "bees" / "b1.png")
    _png(tmp_path / "data" / "ants" / "deep" / "a1.png")
    _png(tmp_path / "data" / "other" / "o1.png")
    _png(tmp_path / "data" / ".hidden" / "h.png")
    (tmp_path / "data" / "ants" / "notes.txt").write_text("x")
    single = _png(tmp_path / "loose.png")
    inputs = collect_files([str(tmp_path / "data"), str(single), str(tmp_path / "missing.png")], CLASSES)
    names = [item.name.replace(str(tmp_path), "") for item in inputs.items]
    assert names == ["/data/ants/deep/a1.png", "/data/bees/b1.png", "/data/other/o1.png", "/loose.png"]
    assert [item.label for item in inputs.items] == [None, 1, None, None]  # deep/ is not a class folder
    assert [line.replace(str(tmp_path), "") for line in inputs.skipped] == [
        "/data/ants/notes.txt: not an image file (.txt)",
        "/missing.png: no such file or folder",
    ]


def test_zips_are_read_in_place_with_their_class_folders(tmp_path):
    archive = tmp_path / "imgs.zip"
    picture = _png(tmp_path / "p.png").read_bytes()
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("set/ants/a.png", picture)
        handle.writestr("set/bees/b.png", picture)
        handle.writestr("set/readme.md", "x")
        handle.writestr("__MACOSX/set/._a.png", "x")
    inputs = collect_files([str(archive)], CLASSES)
    assert [item.name for item in inputs.items] == [
        f"{archive}::set/ants/a.png",
        f"{archive}::set/bees/b.png",
    ]
    assert [item.label for item in inputs.items] == [0, 1]
    assert inputs.items[0].ref == f"zip://{archive}::set/ants/a.png"
    assert inputs.skipped == [f"{archive}::set/readme.md: not an image file"]


def test_a_data_set_split_is_shaped_like_the_checkpoint_and_limited(tmp_path):
    card = meanstd_card("tinyvgg", 1, 12, [str(i) for i in range(10)])
    inputs = collect_dataset(DataOptions(dataset="digits", workers=0), card, "test", limit=5)
    assert inputs.tensor.shape == (5, 1, 12, 12)
    assert [item.name for item in inputs.items] == [f"digits/test/#{i}" for i in range(5)]
    assert all(isinstance(item.label, int) for item in inputs.items)
    with pytest.raises(UserError, match="the checkpoint has 2 classes but --dataset digits has 10"):
        collect_dataset(
            DataOptions(dataset="digits", workers=0), meanstd_card("tinyvgg", 1, 8, CLASSES), "test", 0
        )
    with pytest.raises(UserError, match="unknown --split 'dev'"):
        collect_dataset(DataOptions(dataset="digits"), card, "dev", 0)


def test_short_names_are_safe_file_stems():
    assert short_name(ImageItem("x", ref="/a/b/c d?.png")) == "c_d_"
    assert short_name(ImageItem("x", ref="zip:///z.zip::set/ants/a.png")) == "a"
    assert short_name(ImageItem("digits/test/#7", row=7)) == "7"
