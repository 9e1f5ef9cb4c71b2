"""Image folders and zips: layouts, class mapping, zip safety, the validation scan, pixel conversion."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ignite_cv.data.folder import decode_image, display_name, display_ref, scan_tree
from ignite_cv.data.sources import load_data
from ignite_cv.utils.errors import UserError
from tests.conftest import shared_path
from tests.data.data_helpers import make_class_tree, make_messy_tree, make_options, write_image, zip_tree


def _load(root: Path, seed: int = 0, **overrides):
    return load_data(make_options(dataset="folder", data_root=str(root), **overrides), seed=seed)


def _counts(split, k: int) -> list[int]:
    return torch.bincount(split.labels, minlength=k).tolist()


# ---------------------------------------------------------------------------------------------- layouts


def test_bare_class_folders(tmp_path):
    make_class_tree(tmp_path, {"cat": 20, "dog": 10, "emu": 15})
    bundle = _load(tmp_path, image_size=16)
    assert bundle.class_names == ["cat", "dog", "emu"]
    assert bundle.channels == 3 and bundle.image_size == (16, 16) and bundle.skipped == []
    assert _counts(bundle.test, 3) == [4, 2, 3]  # fixed stratified 20 %
    assert _counts(bundle.val, 3) == [2, 1, 1]  # val_fraction 0.1 of the rest, >= 1 per class
    assert len(bundle.train) + len(bundle.val) + len(bundle.test) == 45
    assert all(Path(f).is_absolute() for f in bundle.train.files)
    assert bundle.train.in_memory and tuple(bundle.train.images.shape) == (len(bundle.train), 3, 16, 16)
    other_seed = _load(tmp_path, seed=7, image_size=16)
    assert other_seed.test.files == bundle.test.files and other_seed.val.files != bundle.val.files


def test_default_size_and_grey(tmp_path):
    make_class_tree(tmp_path, {"a": 3, "b": 3})
    bundle = _load(tmp_path, channels=1)
    assert bundle.image_size == (224, 224) and bundle.channels == 1


def test_train_val_test_used_as_is(tmp_path):
    for split, n in (("train", 8), ("val", 3), ("test", 4)):
        make_class_tree(tmp_path / split, {"x": n, "y": n})
    bundle = _load(tmp_path)
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (16, 6, 8)
    assert all("/val/" in f for f in bundle.val.files) and all("/test/" in f for f in bundle.test.files)


def test_train_val_only_val_becomes_test(tmp_path):
    make_class_tree(tmp_path / "train", {"ants": 20, "bees": 20})
    make_class_tree(tmp_path / "val", {"ants": 5, "bees": 6})
    bundle = _load(tmp_path)
    assert len(bundle.test) == 11 and all("/val/" in f for f in bundle.test.files)
    assert (len(bundle.train), len(bundle.val)) == (36, 4)
    assert all("/train/" in f for f in bundle.train.files + bundle.val.files)


def test_zip_with_wrapping_folder_matches_directory(tmp_path):
    tree = tmp_path / "tree"
    make_class_tree(tree / "train", {"ants": 10, "bees": 12})
    make_class_tree(tree / "val", {"ants": 4, "bees": 3})
    archive = zip_tree(tree, tmp_path / "data.zip", prefix="wrapped_data/")
    from_dir, from_zip = _load(tree, image_size=8), _load(archive, image_size=8)
    assert from_zip.name == "data" and from_zip.class_names == ["ants", "bees"]
    for part in ("train", "val", "test"):
        a, b = getattr(from_dir, part), getattr(from_zip, part)
        assert torch.equal(a.labels, b.labels) and len(a) == len(b)
    ref = from_zip.test.files[0]
    assert ref.startswith(f"zip://{archive.resolve()}::wrapped_data/val/")
    path = from_dir.test.files[0]
    assert torch.equal(decode_image(ref, 3, (8, 8)), decode_image(path, 3, (8, 8)))


# ---------------------------------------------------------------------------------------------- zip safety


@pytest.mark.parametrize("evil", ["../x.png", "a/../../y.png", "/abs.png"])
def test_zip_slip_refused_and_nothing_written(tmp_path, evil):
    work = tmp_path / "work"
    make_class_tree(work / "src", {"a": 2, "b": 2})
    archive = zip_tree(work / "src", work / "evil.zip")
    png = io.BytesIO()
    Image.new("RGB", (4, 4)).save(png, "PNG")
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr(zipfile.ZipInfo(evil), png.getvalue())
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(UserError, match="unsafe entries"):
        _load(archive)
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "y.png").exists()


# ------------------------------------------------------------------------------------------ bad files, modes


@pytest.fixture
def messy_tree(tmp_path) -> Path:
    return make_messy_tree(tmp_path / "messy")


def test_scan_skips_unreadable_and_converts_modes(messy_tree):
    scan = scan_tree(messy_tree, channels=3, workers=2)
    assert len(scan.skipped) == 3
    names = [line.split(": ", 1)[0].rsplit("/", 1)[-1] for line in scan.skipped]
    assert names == ["corrupt.jpg", "notes.txt", "truncated.jpg"]
    assert all(line.startswith(str(messy_tree)) for line in scan.skipped)
    refs, labels = scan.splits["train"]
    assert len(refs) == 104 and labels.count(0) == 54
    by_name = {Path(r).name: r for r in refs}

    deep = decode_image(by_name["zz_deep.png"], 3, None)
    assert deep.dtype == torch.uint8 and tuple(deep.shape) == (3, 10, 10)
    assert deep[:, 5, 5].tolist() == [255, 255, 255] and deep[:, 0, 0].tolist() == [0, 0, 0]
    assert deep[0, 0, 1] == 128
    rgba = decode_image(by_name["zz_rgba.png"], 3, None)
    assert rgba[:, 5, 5].tolist() == [100, 50, 25] and rgba[:, 0, 0].tolist() == [0, 0, 0]
    cmyk = decode_image(by_name["zz_cmyk.jpg"], 3, None)
    assert (cmyk[:, 5, 5].int() - torch.tensor([0, 255, 255])).abs().max() <= 8  # cyan
    grey = decode_image(by_name["zz_deep.png"], 1, (4, 4))
    assert tuple(grey.shape) == (1, 4, 4) and grey.dtype == torch.uint8


def test_bundle_lists_skipped_and_strict_raises(messy_tree):
    bundle = _load(messy_tree)
    assert len(bundle.skipped) == 3 and len(bundle.train) + len(bundle.val) + len(bundle.test) == 104
    assert any("truncated.jpg: damaged or truncated" in line for line in bundle.skipped)
    assert any("notes.txt: not an image file (.txt)" in line for line in bundle.skipped)
    with pytest.raises(UserError, match="corrupt.jpg"):
        _load(messy_tree, strict_data=True)


def test_zip_scan_reports_members(tmp_path, messy_tree):
    archive = zip_tree(messy_tree, tmp_path / "messy.zip")
    bundle = _load(archive, workers=2)
    assert len(bundle.skipped) == 3
    assert all(line.startswith(f"{archive.resolve()}::") for line in bundle.skipped)
    assert display_ref(bundle.train.files[0]).startswith(f"{archive.resolve()}::")


# ---------------------------------------------------------------------------------------------- errors


def test_folder_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        _load(tmp_path / "missing")
    loose = tmp_path / "loose"
    write_image(loose / "a.png", 1)
    with pytest.raises(UserError, match="no class sub-folders"):
        _load(loose)
    single = tmp_path / "single"
    make_class_tree(single, {"only": 5})
    with pytest.raises(UserError, match="single class"):
        _load(single)
    extra = tmp_path / "extra"
    make_class_tree(extra / "train", {"a": 5, "b": 5})
    make_class_tree(extra / "val", {"a": 2, "c": 2})
    with pytest.raises(UserError, match="classes that train lacks: c"):
        _load(extra)
    no_train = tmp_path / "no_train"
    make_class_tree(no_train / "val", {"a": 2, "b": 2})
    make_class_tree(no_train / "test", {"a": 2, "b": 2})
    with pytest.raises(UserError, match="no train/ folder"):
        _load(no_train)


def test_empty_split_after_scan(tmp_path):
    make_class_tree(tmp_path / "train", {"a": 5, "b": 5})
    make_class_tree(tmp_path / "val", {"a": 2, "b": 2})
    (tmp_path / "test" / "a").mkdir(parents=True)
    (tmp_path / "test" / "a" / "broken.png").write_bytes(b"nope")
    with pytest.raises(UserError, match="test split .* is empty"):
        _load(tmp_path)


def test_not_a_folder_or_zip(tmp_path):
    path = tmp_path / "file.txt"
    path.write_text("x")
    with pytest.raises(UserError, match="neither a folder nor a zip"):
        _load(path)
    bad_zip = tmp_path / "bad.zip"
    bad_zip.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty-archive record only
    with pytest.raises(UserError):
        _load(bad_zip)


# ---------------------------------------------------------------------------------------------- real data


def test_hymenoptera_zip():
    archive = shared_path("hymenoptera_data.zip")
    bundle = _load(archive, workers=2)
    assert bundle.class_names == ["ants", "bees"] and bundle.skipped == []
    assert _counts(bundle.test, 2) == [70, 83]  # the val/ folder is the test split
    # train/ has 124 ants (123 JPEGs + the valid imageNotFound.gif) and 121 bees
    assert [a + b for a, b in zip(_counts(bundle.train, 2), _counts(bundle.val, 2))] == [124, 121]
    assert _counts(bundle.val, 2) == [12, 12]
    assert any(f.endswith("train/ants/imageNotFound.gif") for f in bundle.train.files + bundle.val.files)
    assert any(f.endswith("formica.jpeg") for f in bundle.train.files + bundle.val.files)


@pytest.mark.parametrize("shape", [(30, 10), (10, 30), (500, 375), (333, 500), (224, 224), (7, 401)])
def test_center_crop_keeps_the_centre(tmp_path, shape):
    width, height = shape
    side = min(width, height)
    pixels = np.zeros((height, width), dtype=np.uint8)
    top, left = (height - side) // 2, (width - side) // 2
    pixels[top : top + side, left : left + side] = 255
    path = tmp_path / "img.png"
    Image.fromarray(pixels).save(path)
    cropped = decode_image(str(path), 1, (side, side), center_crop=True)
    assert tuple(cropped.shape) == (1, side, side)
    # the central square is white; with an odd margin the crop is offset by half a pixel at most
    assert bool((cropped[:, 1:-1, 1:-1] == 255).all()) and int(cropped.min()) >= 127
    small = decode_image(str(path), 3, (5, 5), center_crop=True)
    assert tuple(small.shape) == (3, 5, 5)
    stretched = decode_image(str(path), 1, (side, side), center_crop=False)
    assert (width == height) == bool((stretched >= 254).all())


def test_relative_root_symlinked_class_and_cycle(tmp_path, monkeypatch):
    make_class_tree(tmp_path / "elsewhere", {"b": 4})
    make_class_tree(tmp_path / "data", {"a": 4})
    (tmp_path / "data" / "b").symlink_to(tmp_path / "elsewhere" / "b", target_is_directory=True)
    (tmp_path / "data" / "a" / "loop").symlink_to(tmp_path / "data", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    scan = scan_tree("data", channels=3)
    assert scan.class_names == ["a", "b"]
    refs, labels = scan.splits["train"]
    assert labels.count(0) == 4 and labels.count(1) == 4
    assert all(Path(r).is_absolute() for r in refs)


def test_an_empty_class_folder_is_named_not_taken_for_a_single_class(tmp_path):
    from tests.data.data_helpers import make_class_tree

    make_class_tree(tmp_path / "flat", {"cats": 4})
    (tmp_path / "flat" / "dogs").mkdir()
    with pytest.raises(UserError, match="class folder .*dogs holds no files; add its images"):
        scan_tree(tmp_path / "flat", 3)
    make_class_tree(tmp_path / "split" / "train", {"cats": 4, "dogs": 4})
    (tmp_path / "split" / "train" / "birds").mkdir()
    with pytest.raises(UserError, match="train.birds holds no files"):
        scan_tree(tmp_path / "split", 3)


def test_a_name_with_a_newline_is_listed_escaped(tmp_path):
    root = tmp_path / "tree"
    make_class_tree(root, {"a": 3, "b": 3})
    (root / "a" / "bad\nname.jpg").write_bytes(b"not a jpeg")
    write_image(root / "b" / "fine\tname.png", value=5)
    bundle = load_data(
        make_options(dataset="folder", data_root=str(root), image_size=8, no_cache=True), seed=0
    )
    shown = '"' + str(root / "a") + '/bad\\nname.jpg"'
    assert bundle.skipped == [f"{shown}: not a readable image (unknown or damaged format)"]
    assert sum(len(s) for s in (bundle.train, bundle.val, bundle.test)) == 7
    assert display_name("/x/a b/ü.png") == "/x/a b/ü.png"
    assert display_name("/x/tab\there.png") == '"/x/tab\\there.png"'
    assert display_name('"quoted".png') == '"\\"quoted\\".png"'
    assert display_name("zip:///a.zip::x\ry.png") == '"/a.zip::x\\ry.png"'
