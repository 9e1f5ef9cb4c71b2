"""load_data for array sources: digits, IDX (MNIST layout), npz, torchvision-backed CIFAR; errors."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from ignite_cv.data import sources
from ignite_cv.data.sources import convert_channels, load_data, resize_images
from ignite_cv.utils.errors import UserError
from tests.conftest import shared_path
from tests.data.data_helpers import make_options


@pytest.fixture
def offline(monkeypatch):
    """No test may download: pretend the network is unreachable."""
    monkeypatch.setattr(sources, "_online", lambda urls, timeout=3.0: False)


# ---------------------------------------------------------------------------------------------- digits


def test_digits_bundle():
    bundle = load_data(make_options(dataset="digits"), seed=0)
    assert bundle.name == "digits" and bundle.class_names == [str(i) for i in range(10)]
    assert bundle.channels == 1 and bundle.image_size == (8, 8)
    sizes = [len(s) for s in (bundle.train, bundle.val, bundle.test)]
    assert sum(sizes) == 1797
    assert abs(sizes[2] - 0.2 * 1797) < 10  # stratified 20 % test split
    assert abs(sizes[1] - 0.1 * (1797 - sizes[2])) < 10  # val_fraction of the rest
    for split in (bundle.train, bundle.val, bundle.test):
        assert split.images.dtype == torch.uint8 and tuple(split.images.shape[1:]) == (1, 8, 8)
        assert split.labels.dtype == torch.int64
        assert torch.bincount(split.labels, minlength=10).min() > 0
    assert int(bundle.train.images.max()) == 255 and int(bundle.train.images.min()) == 0
    # values are round(v * 255 / 16) for v in 0..16
    allowed = {round(v * 255 / 16) for v in range(17)}
    assert set(torch.unique(bundle.train.images).tolist()) <= allowed


def test_digits_read_without_sklearn_equal_load_digits():
    from sklearn.datasets import load_digits

    from ignite_cv.data.sources import _digits_arrays

    images, target = _digits_arrays()
    digits = load_digits()
    assert images.dtype == digits.images.dtype and np.array_equal(images, digits.images)
    assert target.dtype == np.int64 and np.array_equal(target, digits.target)


def test_digits_test_split_is_fixed_and_val_follows_the_seed():
    a = load_data(make_options(dataset="digits"), seed=0)
    b = load_data(make_options(dataset="digits"), seed=1)
    assert torch.equal(a.test.images, b.test.images) and torch.equal(a.test.labels, b.test.labels)
    assert not torch.equal(a.val.images, b.val.images)
    again = load_data(make_options(dataset="digits"), seed=0)
    assert torch.equal(a.val.images, again.val.images) and torch.equal(a.train.labels, again.train.labels)


def test_train_on_val_adds_the_validation_split_to_training():
    plain = load_data(make_options(dataset="digits"), seed=0)
    pooled = load_data(make_options(dataset="digits", train_on_val=True), seed=0)
    assert len(pooled.train) == len(plain.train) + len(plain.val)
    assert torch.equal(pooled.train.images, torch.cat([plain.train.images, plain.val.images]))
    assert torch.equal(pooled.train.labels, torch.cat([plain.train.labels, plain.val.labels]))
    assert torch.equal(pooled.val.images, plain.val.images) and torch.equal(
        pooled.test.images, plain.test.images
    )


def test_pool_validation_of_file_splits():
    from ignite_cv.data.splits import DataBundle, Split, pool_validation

    train = Split(labels=torch.tensor([0, 1]), files=["a.png", "b.png"])
    val = Split(labels=torch.tensor([1]), files=["c.png"])
    bundle = DataBundle("files", train, val, val, ["x", "y"], 3, (8, 8))
    pooled = pool_validation(bundle)
    assert pooled.train.files == ["a.png", "b.png", "c.png"] and pooled.train.labels.tolist() == [0, 1, 1]
    assert pooled.val is val


def test_digits_resized_to_rgb():
    bundle = load_data(make_options(dataset="digits", channels=3, image_size=16), seed=0)
    assert bundle.channels == 3 and bundle.image_size == (16, 16)
    images = bundle.test.images
    assert images.dtype == torch.uint8 and tuple(images.shape[1:]) == (3, 16, 16)
    assert torch.equal(images[:, 0], images[:, 1]) and torch.equal(images[:, 1], images[:, 2])


def test_unknown_dataset_and_bad_options():
    with pytest.raises(UserError, match="unknown --dataset"):
        load_data(make_options(dataset="imagenet"), seed=0)
    with pytest.raises(UserError, match="--channels"):
        load_data(make_options(dataset="digits", channels=2), seed=0)
    with pytest.raises(UserError, match="--val-fraction"):
        load_data(make_options(dataset="digits", val_fraction=0.0), seed=0)


# ---------------------------------------------------------------------------------------------- array helpers


def test_convert_channels_matches_pillow_luma():
    rgb = torch.tensor([[255, 0, 0], [0, 255, 0], [0, 0, 255], [12, 200, 77]], dtype=torch.uint8)
    images = rgb.T.reshape(1, 3, 1, 4).contiguous()
    grey = convert_channels(images, 1)
    pil = Image.fromarray(rgb.numpy().reshape(1, 4, 3)).convert("L")
    assert grey.flatten().tolist() == list(np.asarray(pil).flatten())
    assert torch.equal(convert_channels(grey, 3)[:, 2], grey[:, 0])


def test_resize_images_uint8_and_constant_preserved():
    images = torch.full((3, 1, 28, 28), 77, dtype=torch.uint8)
    out = resize_images(images, (14, 20))
    assert out.dtype == torch.uint8 and tuple(out.shape) == (3, 1, 14, 20) and bool((out == 77).all())
    assert resize_images(images, (28, 28)) is images


@pytest.mark.parametrize(("height", "width"), [(10, 30), (30, 10), (12, 12)])
def test_resize_images_center_crop(height, width):
    side = min(height, width)
    images = torch.zeros((2, 1, height, width), dtype=torch.uint8)
    top, left = (height - side) // 2, (width - side) // 2
    images[..., top : top + side, left : left + side] = 200
    out = resize_images(images, (5, 5), center_crop=True)
    assert tuple(out.shape) == (2, 1, 5, 5) and bool((out == 200).all())


# ---------------------------------------------------------------------------------------------- IDX sources


def _write_idx(path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def _fake_mnist(directory, n_train=60, n_test=20):
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        _write_idx(directory / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(directory / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)


def test_mnist_in_torchvision_layout(tmp_path):
    _fake_mnist(tmp_path / "MNIST" / "raw")
    bundle = load_data(make_options(dataset="mnist", data_root=str(tmp_path)), seed=0)
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (50, 10, 20)
    assert bundle.class_names == [str(i) for i in range(10)]
    assert tuple(bundle.test.images.shape) == (20, 1, 28, 28)
    assert bundle.test.labels.tolist() == [i % 10 for i in range(20)]  # t10k in file order


def test_fashion_mnist_flat_layout_and_names(tmp_path):
    _fake_mnist(tmp_path)
    bundle = load_data(make_options(dataset="fashion-mnist", data_root=str(tmp_path)), seed=0)
    assert bundle.class_names[0] == "T-shirt/top" and bundle.class_names[9] == "Ankle boot"


def test_mnist_missing_files_offline(tmp_path, offline):
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"")
    with pytest.raises(UserError) as err:
        load_data(make_options(dataset="mnist", data_root=str(tmp_path)), seed=0)
    message = str(err.value)
    assert "t10k-labels-idx1-ubyte" in message and "no internet" in message and "\n" not in message
    with pytest.raises(UserError, match="does not exist"):
        load_data(make_options(dataset="mnist", data_root=str(tmp_path / "nowhere")), seed=0)
    with pytest.raises(UserError, match="needs --data-root"):
        load_data(make_options(dataset="mnist"), seed=0)


def test_mnist_corrupt_file(tmp_path):
    _fake_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x05ab"))
    with pytest.raises(UserError, match="truncated"):
        load_data(make_options(dataset="mnist", data_root=str(tmp_path)), seed=0)


def test_cifar_absent_offline(tmp_path, offline):
    with pytest.raises(UserError, match="no internet access"):
        load_data(make_options(dataset="cifar10", data_root=str(tmp_path)), seed=0)
    with pytest.raises(UserError, match="needs --data-root"):
        load_data(make_options(dataset="cifar100"), seed=0)


def test_cifar_arrays_become_nchw(tmp_path, monkeypatch, offline):
    """torchvision's CIFAR class replaced by a stand-in with the same attributes (no files needed)."""
    import torchvision

    class FakeCIFAR10:
        url, filename, base_folder = "https://example.invalid/c.tar.gz", "c.tar.gz", "c"

        def __init__(self, root, train, download):
            n = 50 if train else 10
            self.data = np.zeros((n, 32, 32, 3), dtype=np.uint8)
            self.data[..., 2] = 7  # blue channel
            self.targets = [i % 10 for i in range(n)]
            self.classes = [f"class{i}" for i in range(10)]

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    bundle = load_data(make_options(dataset="cifar10", data_root=str(tmp_path)), seed=0)
    assert bundle.class_names[3] == "class3" and bundle.channels == 3 and bundle.image_size == (32, 32)
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (40, 10, 10)
    assert tuple(bundle.test.images.shape) == (10, 3, 32, 32)
    assert bool((bundle.test.images[:, 2] == 7).all()) and int(bundle.test.images[:, :2].max()) == 0


@pytest.mark.parametrize(
    ("dataset", "directory", "train_counts"),
    [
        ("fashion-mnist", "fashion-mnist", [6000] * 10),
        ("mnist", "mnist", [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]),
    ],
)
def test_shared_idx_data(dataset, directory, train_counts):
    root = shared_path(directory)
    bundle = load_data(make_options(dataset=dataset, data_root=str(root)), seed=0)
    val_counts = torch.bincount(bundle.val.labels, minlength=10).tolist()
    assert val_counts == [round(n * 0.1) for n in train_counts]
    assert torch.bincount(bundle.train.labels, minlength=10).tolist() == [
        n - v for n, v in zip(train_counts, val_counts)
    ]
    assert len(bundle.train) + len(bundle.val) == 60000 and len(bundle.test) == 10000
    if dataset == "fashion-mnist":
        assert len(bundle.val) == 6000 and bundle.class_names[1] == "Trouser"
        assert torch.bincount(bundle.test.labels).tolist() == [1000] * 10
    assert bundle.train.images.dtype == torch.uint8 and tuple(bundle.train.images.shape[1:]) == (1, 28, 28)


# ---------------------------------------------------------------------------------------------- npz


def _savez(path, **arrays):
    np.savez_compressed(path, **arrays)
    return path


def test_npz_grey_with_val(tmp_path):
    rng = np.random.default_rng(0)
    path = _savez(
        tmp_path / "d.npz",
        train_images=rng.integers(0, 256, (30, 9, 9), dtype=np.uint8),
        train_labels=(np.arange(30) % 3).reshape(-1, 1).astype(np.uint8),
        val_images=rng.integers(0, 256, (6, 9, 9), dtype=np.uint8),
        val_labels=np.arange(6) % 3,
        test_images=rng.integers(0, 256, (9, 9, 9), dtype=np.uint8),
        test_labels=(np.arange(9) % 3).reshape(-1, 1),
    )
    bundle = load_data(make_options(dataset="npz", data_root=str(path)), seed=0)
    assert bundle.name == "d" and bundle.class_names == ["0", "1", "2"] and bundle.channels == 1
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (30, 6, 9)
    assert tuple(bundle.val.images.shape) == (6, 1, 9, 9) and bundle.val.labels.dtype == torch.int64


def test_npz_rgb_without_val_and_to_grey(tmp_path):
    images = np.zeros((40, 5, 5, 3), dtype=np.uint8)
    images[..., 0] = 255  # pure red
    path = _savez(
        tmp_path / "rgb.npz",
        train_images=images,
        train_labels=np.arange(40) % 2,
        test_images=images[:4],
        test_labels=np.arange(4) % 2,
    )
    bundle = load_data(make_options(dataset="npz", data_root=str(path)), seed=0)
    assert bundle.channels == 3 and (len(bundle.train), len(bundle.val), len(bundle.test)) == (36, 4, 4)
    assert bundle.val.images[:, 0].min() == 255 and bundle.val.images[:, 1].max() == 0
    grey = load_data(make_options(dataset="npz", data_root=str(path), channels=1, image_size=10), seed=0)
    assert tuple(grey.train.images.shape[1:]) == (1, 10, 10) and bool((grey.train.images == 76).all())


def test_shared_pneumoniamnist():
    path = shared_path("medmnist", "pneumoniamnist.npz")
    bundle = load_data(make_options(dataset="npz", data_root=str(path)), seed=0)
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (4708, 524, 624)
    assert torch.bincount(bundle.test.labels).tolist() == [234, 390]


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"train_images": np.zeros((4, 3, 3), np.float32), "train_labels": np.arange(4) % 2}, "not uint8"),
        ({"train_images": np.zeros((4, 3, 3), np.uint8), "train_labels": np.zeros((4, 5))}, "multi-label"),
        ({"test_images": np.zeros((4, 3, 3), np.uint8), "test_labels": np.arange(4) % 2}, "no train_images"),
        ({"train_images": np.zeros((4, 3, 3), np.uint8), "train_labels": np.zeros(4, int)}, "single class"),
    ],
)
def test_npz_bad_content(tmp_path, arrays, message):
    path = _savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(UserError, match=message):
        load_data(make_options(dataset="npz", data_root=str(path)), seed=0)


def test_npz_corrupt_or_missing(tmp_path):
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(UserError, match="cannot read"):
        load_data(make_options(dataset="npz", data_root=str(corrupt)), seed=0)
    npy = tmp_path / "plain.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(UserError, match="not an .npz"):
        load_data(make_options(dataset="npz", data_root=str(npy)), seed=0)
    with pytest.raises(UserError, match="does not exist"):
        load_data(make_options(dataset="npz", data_root=str(tmp_path / "none.npz")), seed=0)


def _npz(n=20, size=4, classes=2, **extra):
    rng = np.random.default_rng(0)
    return {
        "train_images": rng.integers(0, 256, (n, size, size), dtype=np.uint8),
        "train_labels": np.arange(n) % classes,
        **extra,
    }


def _huge_label():
    arrays = _npz()
    arrays["train_labels"][3] = 10**9
    return arrays


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (_huge_label(), r"holds the label 1000000000, outside 0..99999"),
        (_npz(val_images=np.zeros((4, 4, 4), np.uint8), val_labels=np.full(4, 2)), "val_labels hold class 2"),
        (
            _npz(test_images=np.zeros((4, 4, 4), np.uint8), test_labels=np.full(4, 5)),
            "test_labels hold class 5",
        ),
        (
            {"train_images": np.zeros((0, 4, 4), np.uint8), "train_labels": np.zeros(0, int)},
            "no training samples",
        ),
        (_npz(size=0), "images of shape 0×0"),
        ({**_npz(), "train_labels": (np.arange(20) % 2) * 2}, "no sample of class 1"),
        ({**_npz(), "train_labels": np.arange(20) % 2 - 1}, "holds the label -1"),
    ],
)
def test_npz_labels_and_sizes_are_bounded_before_anything_is_allocated(tmp_path, arrays, message):
    path = _savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(UserError, match=message):
        load_data(make_options(dataset="npz", data_root=str(path)), seed=0)


def test_an_image_size_that_would_not_fit_in_memory_is_refused_before_resizing():
    with pytest.raises(UserError, match=r"1797 images of digits at 8192×8192×1 need 112\.3 GiB"):
        load_data(make_options(image_size=8192), seed=0)
