"""collect_inputs: folders recursive and sorted, zips by member, non-images left out, arrays by layout."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from ignite_cv.inference.inputs import collect_inputs
from ignite_cv.utils.errors import UserError
from tests.inference.conftest import random_image


def _tree(root):
    (root / "b" / "deep").mkdir(parents=True)
    (root / ".hidden").mkdir()
    random_image(0).save(root / "z.png")
    random_image(1).save(root / "b" / "deep" / "x.jpg")
    random_image(2).save(root / "a.PNG")
    random_image(3).save(root / ".hidden" / "h.png")
    random_image(4).save(root / ".dot.png")
    (root / "b" / "notes.txt").write_text("not an image")
    return root


def test_a_folder_is_searched_recursively_in_sorted_order_without_hidden_files(tmp_path):
    root = _tree(tmp_path / "imgs")
    collected = collect_inputs(str(root))
    shown = f"{root}/"
    assert [i.source for i in collected.images] == [shown + "a.PNG", shown + "b/deep/x.jpg", shown + "z.png"]
    assert [i.ref for i in collected.images] == [
        str(root / "a.PNG"),
        str(root / "b/deep/x.jpg"),
        str(root / "z.png"),
    ]
    assert [(x.source, x.reason) for x in collected.left_out] == [
        (shown + "b/notes.txt", "not an image file (.txt)")
    ]


def test_a_zip_lists_its_image_members_as_archive_member(tmp_path):
    archive = tmp_path / "scans.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in ("set/b.png", "set/a.png", "__MACOSX/set/._a.png", "set/readme.md"):
            buffer = tmp_path / "one.png"
            random_image(5).save(buffer)
            zf.write(buffer, name)
    collected = collect_inputs([archive])
    assert [i.source for i in collected.images] == [f"{archive}::set/a.png", f"{archive}::set/b.png"]
    assert collected.images[0].ref == f"zip://{archive.resolve()}::set/a.png"
    assert [x.source for x in collected.left_out] == [f"{archive}::set/readme.md"]


def test_a_zip_with_an_unsafe_member_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../outside.png", b"x")
    with pytest.raises(UserError, match=r"unsafe entry '\.\./outside\.png'"):
        collect_inputs(archive)


def test_a_file_named_directly_is_kept_whatever_its_extension(tmp_path):
    odd = tmp_path / "photo.data"
    random_image(0).save(odd, format="PNG")
    collected = collect_inputs([str(odd)])
    assert [(i.source, i.ref) for i in collected.images] == [(str(odd), str(odd))] and not collected.left_out


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: p / "missing.jpg", "does not exist"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "has no image files"),
    ],
)
def test_a_missing_path_or_an_empty_folder_is_a_user_error(tmp_path, make, match):
    target = make(tmp_path)
    with pytest.raises(UserError, match=match):
        collect_inputs([str(target)])


def test_in_memory_images_by_layout():
    hwc = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    chw = torch.from_numpy(hwc).permute(2, 0, 1).contiguous()
    grey = np.arange(20, dtype=np.uint8).reshape(4, 5)
    batch = np.stack([hwc, hwc[::-1]])
    collected = collect_inputs([hwc, chw, grey, batch, Image.fromarray(hwc)])
    images = [i.image for i in collected.images]
    assert [i.source for i in collected.images] == [
        "<image 0>",
        "<image 1>",
        "<image 2>",
        "<image 3.0>",
        "<image 3.1>",
        "<image 4>",
    ]
    assert [im.mode for im in images] == ["RGB", "RGB", "L", "RGB", "RGB", "RGB"]
    for im in (images[0], images[1], images[3], images[5]):
        np.testing.assert_array_equal(np.asarray(im), hwc)
    np.testing.assert_array_equal(np.asarray(images[4]), hwc[::-1])
    # A (3, H, 3) numpy array is HWC (numpy's convention); the same shape as a tensor is CHW.
    square = np.zeros((3, 7, 3), dtype=np.uint8)
    assert collect_inputs(square).images[0].image.size == (7, 3)
    assert collect_inputs(torch.from_numpy(square)).images[0].image.size == (3, 7)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (np.zeros((4, 4, 3), dtype=np.float32), "dtype float32"),
        (np.zeros((5, 5, 7), dtype=np.uint8), "no channel axis"),
        (np.zeros((5,), dtype=np.uint8), "has shape"),
        (3.5, "is a float"),
    ],
)
def test_bad_in_memory_inputs_are_user_errors(value, match):
    with pytest.raises(UserError, match=match):
        collect_inputs([value])
