"""The explanation folder: only a new or empty folder, the maps round-trip, index.csv has its columns."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from ignite_cv.explain.outputs import INDEX_COLUMNS, ExplanationFolder, check_output_dir, read_maps
from ignite_cv.utils.errors import UserError


def test_only_an_absent_or_empty_folder_is_accepted(tmp_path):
    assert check_output_dir(tmp_path / "new") == tmp_path / "new"
    (tmp_path / "empty").mkdir()
    assert check_output_dir(tmp_path / "empty") == tmp_path / "empty"
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "index.csv").write_text("x")
    (tmp_path / "file").write_text("x")
    for name in ("used", "file"):
        with pytest.raises(UserError, match=f"--output {tmp_path / name} already exists and is not an empty"):
            check_output_dir(tmp_path / name)


def test_files_maps_and_index(tmp_path):
    folder = ExplanationFolder(tmp_path / "out")
    picture = np.zeros((4, 4, 3), dtype=np.uint8)
    folder.image_files("0000_a", picture, picture, picture)
    maps = torch.rand(2, 4, 4)
    folder.maps(maps, {"method": "gradcam", "images": '["a", "b"]'})
    folder.skipped(["b.png: damaged"])
    row = dict.fromkeys(INDEX_COLUMNS, "x")
    folder.index([row, {**row, "image": "b"}])
    out = tmp_path / "out"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "heatmap/0000_a.png",
        "index.csv",
        "maps.safetensors",
        "original/0000_a.png",
        "overlay/0000_a.png",
        "skipped.txt",
    ]
    loaded, metadata = read_maps(out / "maps.safetensors")
    assert torch.equal(loaded, maps) and metadata == {"method": "gradcam", "images": ["a", "b"]}
    with open(out / "index.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(INDEX_COLUMNS) and [r["image"] for r in rows] == ["x", "b"]
    assert (out / "skipped.txt").read_text() == "b.png: damaged\n"
