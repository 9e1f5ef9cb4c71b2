"""Loaders: seeded per-epoch order, sharding, batching, file decoding in workers, memory budget."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ignite_cv.data.loaders import (
    FileImageDataset,
    FileLoader,
    TensorLoader,
    balanced_weights,
    build_loader,
    epoch_indices,
    fits_on_device,
    materialize,
)
from ignite_cv.data.sources import load_data
from ignite_cv.data.splits import Split
from ignite_cv.utils.errors import UserError
from tests.data.data_helpers import make_class_tree, make_options, zip_tree


def _split(n: int) -> Split:
    """Image k is filled with k % 256 and labelled k, so batches reveal their sample indices."""
    images = (torch.arange(n) % 256).to(torch.uint8).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()
    return Split(labels=torch.arange(n), images=images)


def _epoch(loader) -> list[int]:
    return [i for _, labels in loader for i in labels.tolist()]


# ---------------------------------------------------------------------------------------------- TensorLoader


def test_order_is_a_pure_function_of_seed_and_epoch():
    split = _split(50)
    a = TensorLoader(split.images, split.labels, 8, shuffle=True, seed=3)
    b = TensorLoader(split.images, split.labels, 8, shuffle=True, seed=3)
    first = [_epoch(a) for _ in range(3)]  # iterating advances the epoch
    b.set_epoch(2)
    assert _epoch(b) == first[2]
    b.set_epoch(0)
    assert _epoch(b) == first[0]
    assert first[0] != first[1] != first[2]  # reshuffled every epoch
    assert all(sorted(order) == list(range(50)) for order in first)
    c = TensorLoader(split.images, split.labels, 8, shuffle=True, seed=4)
    assert _epoch(c) != first[0]


def test_batches_are_consistent_slices():
    split = _split(20)
    loader = TensorLoader(split.images, split.labels, 6, shuffle=True, seed=0)
    for images, labels in loader:
        assert images.dtype == torch.uint8 and labels.dtype == torch.int64
        assert torch.equal(images[:, 0, 0, 0].long(), labels % 256)


def test_eval_order_is_sequential_and_complete():
    split = _split(10)
    loader = TensorLoader(split.images, split.labels, 4, shuffle=False)
    assert _epoch(loader) == list(range(10)) and len(loader) == 3
    assert [len(lbl) for _, lbl in loader] == [4, 4, 2]


def test_training_drops_only_a_single_sample_batch():
    split = _split(9)
    loader = TensorLoader(split.images, split.labels, 4, shuffle=True, drop_last=True)
    assert len(loader) == 2 and [len(lbl) for _, lbl in loader] == [4, 4]
    split = _split(10)
    loader = TensorLoader(split.images, split.labels, 4, shuffle=True, drop_last=True)
    assert len(loader) == 3 and [len(lbl) for _, lbl in loader] == [4, 4, 2]
    ones = TensorLoader(split.images, split.labels, 1, shuffle=True, drop_last=True)
    assert len(ones) == 10  # batch size 1 is the user's choice


def test_training_shards_equal_and_disjoint():
    split = _split(11)
    x, y = split.images, split.labels
    shards = [TensorLoader(x, y, 2, shuffle=True, seed=1, rank=r, world_size=2) for r in (0, 1)]
    orders = [_epoch(s) for s in shards]
    assert len(orders[0]) == len(orders[1]) == 5 and len(shards[0]) == len(shards[1])
    assert not set(orders[0]) & set(orders[1])
    # both ranks cut the same permutation, strided: batch i of both ranks is batch i of one process
    whole = epoch_indices(11, shuffle=True, seed=1, epoch=0).tolist()
    assert orders[0] == whole[0:10:2] and orders[1] == whole[1:10:2]
    single = TensorLoader(x, y, 4, shuffle=True, seed=1)
    first_global = next(iter(single))[1].tolist()
    fresh = [TensorLoader(x, y, 2, shuffle=True, seed=1, rank=r, world_size=2) for r in (0, 1)]
    first_ranks = [next(iter(s))[1].tolist() for s in fresh]
    assert sorted(first_global) == sorted(first_ranks[0] + first_ranks[1])


def test_eval_shards_cover_every_sample_once_with_odd_count():
    split = _split(11)
    x, y = split.images, split.labels
    shards = [TensorLoader(x, y, 3, shuffle=False, rank=r, world_size=2) for r in (0, 1)]
    orders = [_epoch(s) for s in shards]
    assert sorted(orders[0] + orders[1]) == list(range(11))
    assert (len(orders[0]), len(orders[1])) == (6, 5)


# ---------------------------------------------------------------------------------------------- build_loader


def test_build_loader_in_memory_and_batch_size_check():
    split = _split(30)
    loader = build_loader(split, batch_size=8, train=True, device="cpu", seed=0, world_size=2, rank=1)
    assert isinstance(loader, TensorLoader) and loader.images.device.type == "cpu" and len(loader) == 2
    with pytest.raises(UserError, match=r"--batch-size 32 is larger than the training split \(30 samples\)"):
        build_loader(split, batch_size=16, train=True, device="cpu", seed=0, world_size=2)
    evaluation = build_loader(split, batch_size=100, train=False, device="cpu", seed=0)
    assert len(evaluation) == 1


@pytest.fixture
def file_bundle(tmp_path):
    make_class_tree(tmp_path / "tree", {"a": 12, "b": 9})
    archive = zip_tree(tmp_path / "tree", tmp_path / "tree.zip")
    options = make_options(dataset="folder", data_root=str(archive), image_size=6, val_fraction=0.2)
    bundle = load_data(options, seed=0)  # decoded once; the loaders here start from the files alone
    files_only = {name: Split(labels=s.labels, files=s.files) for name, s in _splits(bundle).items()}
    return dataclasses.replace(bundle, **files_only)


def _splits(bundle) -> dict[str, Split]:
    return {"train": bundle.train, "val": bundle.val, "test": bundle.test}


def test_file_loader_matches_materialized_split_with_balanced_draws_too(file_bundle):
    split = file_bundle.train
    decode = dict(image_size=file_bundle.image_size, channels=file_bundle.channels)
    memory = materialize(split, **decode, workers=0)
    args = dict(batch_size=4, train=True, device="cpu", seed=5, weights=balanced_weights(split.labels))
    files, tensors = build_loader(split, workers=0, **args, **decode), build_loader(memory, **args)
    file_batches, tensor_batches = list(files), list(tensors)
    assert len(file_batches) == len(tensor_batches) > 0
    for (fi, fl), (ti, tl) in zip(file_batches, tensor_batches):
        assert torch.equal(fi, ti) and torch.equal(fl, tl)


def test_file_loader_matches_materialized_split(file_bundle):
    split = file_bundle.train
    decode = dict(image_size=file_bundle.image_size, channels=file_bundle.channels)
    memory = materialize(split, **decode, workers=0)
    assert memory.images.dtype == torch.uint8 and tuple(memory.images.shape) == (len(split), 3, 6, 6)
    assert torch.equal(memory.labels, split.labels)
    args = dict(batch_size=4, train=True, device="cpu", seed=5, rank=1, world_size=2)
    files = build_loader(split, workers=2, **args, **decode)
    tensors = build_loader(memory, **args)
    assert isinstance(files, FileLoader) and len(files) == len(tensors)
    for _ in range(2):  # two epochs, persistent workers, each opening the zip lazily
        file_batches, tensor_batches = list(files), list(tensors)
        assert len(file_batches) == len(tensor_batches)
        for (fi, fl), (ti, tl) in zip(file_batches, tensor_batches):
            assert fi.dtype == torch.uint8 and torch.equal(fi, ti) and torch.equal(fl, tl)


def test_materialize_in_workers_equals_in_process(file_bundle):
    decode = dict(image_size=file_bundle.image_size, channels=file_bundle.channels)
    a = materialize(file_bundle.test, **decode, workers=0)
    b = materialize(file_bundle.test, **decode, workers=2)
    assert torch.equal(a.images, b.images)
    assert materialize(a, **decode) is a


def test_file_dataset_item(file_bundle):
    dataset = FileImageDataset(file_bundle.val.files, file_bundle.val.labels, 5, channels=1, center_crop=True)
    image, label = dataset[0]
    assert image.dtype == torch.uint8 and tuple(image.shape) == (1, 5, 5)
    assert label == int(file_bundle.val.labels[0])


def test_file_split_needs_decode_settings(file_bundle):
    with pytest.raises(ValueError, match="image_size and channels"):
        build_loader(file_bundle.test, batch_size=2, train=False, device="cpu", seed=0)


def test_fits_on_device():
    split = _split(100)  # 100 * (4 + 8) bytes
    assert fits_on_device([split, split], "cpu", budget_bytes=2400)
    assert not fits_on_device([split, split], "cpu", budget_bytes=2399)
    files = Split(labels=torch.zeros(10, dtype=torch.int64), files=["x.png"] * 10)
    assert fits_on_device([files], "cpu", 10 * (3 * 4 * 4 + 8), sample_shape=(3, 4, 4))
    assert not fits_on_device([files], "cpu", 10 * (3 * 4 * 4 + 8) - 1, sample_shape=(3, 4, 4))
    assert fits_on_device([split], "cpu")  # default CPU budget: 4 GiB


# ------------------------------------------------------------------------------------ class-balanced draws


def _imbalanced(n: int = 1000, positives: int = 100) -> Split:
    """Sample k labelled 1 for k < positives, else 0; image k holds k (see :func:`_split`) mod 256."""
    split = _split(n)
    return Split(labels=(torch.arange(n) < positives).long(), images=split.images)


def _drawn(loader) -> list[int]:
    """The sample indices an epoch drew: image k's value is k mod 256 and its label tells k's class."""
    return [i for images, _ in loader for i in images[:, 0, 0, 0].tolist()]


def test_balanced_draws_make_every_class_about_as_frequent_over_an_epoch():
    split = _imbalanced(1000, 100)  # 10 % positives
    weights = balanced_weights(split.labels)
    assert weights.sum().item() == pytest.approx(2.0)  # each class's weights sum to 1
    loader = TensorLoader(split.images, split.labels, 50, shuffle=True, seed=0, weights=weights)
    for epoch in range(3):
        labels = torch.cat([labels for _, labels in loader])
        assert len(labels) == 1000  # as many draws as samples
        share = labels.float().mean().item()
        # a binomial share of 1000 draws at p = 0.5 has a standard deviation of 0.016: within 4 of them
        assert abs(share - 0.5) < 0.064, (epoch, share)
    plain = TensorLoader(split.images, split.labels, 50, shuffle=True, seed=0)
    assert torch.cat([labels for _, labels in plain]).float().mean().item() == pytest.approx(0.1)


def test_balanced_draws_of_two_processes_are_the_one_process_stream():
    split = _imbalanced(203, 31)
    weights = balanced_weights(split.labels)
    one = epoch_indices(203, shuffle=True, seed=7, epoch=4, weights=weights)
    ranks = [
        epoch_indices(203, shuffle=True, seed=7, epoch=4, rank=r, world_size=2, weights=weights)
        for r in (0, 1)
    ]
    assert len(ranks[0]) == len(ranks[1]) == 101
    merged = torch.stack(ranks, dim=1).flatten()  # batch i of both ranks together = global batch i
    assert torch.equal(merged, one[:202])
    other_seed = epoch_indices(203, shuffle=True, seed=8, epoch=4, weights=weights)
    assert not torch.equal(other_seed, one)
    # and through the loaders: rank r's global batch of 8 is its half of the one-process batch of 16
    single = TensorLoader(split.images, split.labels, 16, shuffle=True, seed=7, weights=weights)
    halves = [
        TensorLoader(
            split.images, split.labels, 8, shuffle=True, seed=7, rank=r, world_size=2, weights=weights
        )
        for r in (0, 1)
    ]
    for loader in (single, *halves):
        loader.set_epoch(4)
    batches = list(zip(_batches_of(single), *map(_batches_of, halves)))
    assert len(batches) == 13
    for whole, a, b in batches[:-1]:
        assert sorted(whole) == sorted(a + b)
    whole, a, b = batches[-1]  # one process also draws the 203rd sample; two leave it out (equal shards)
    assert sorted(a + b) == sorted(whole[:-1])


def _batches_of(loader) -> list[list[int]]:
    return [images[:, 0, 0, 0].tolist() for images, _ in loader]


def test_a_resumed_epoch_of_balanced_draws_continues_where_it_stopped():
    from ignite_cv.training.resume import SkippingLoader

    split = _imbalanced(300, 40)
    make = lambda: SkippingLoader(  # noqa: E731
        TensorLoader(
            split.images,
            split.labels,
            32,
            shuffle=True,
            seed=2,
            drop_last=True,
            weights=balanced_weights(split.labels),
        )
    )
    full = make()
    full.set_epoch(3)
    uninterrupted = _drawn(full)
    resumed = make()  # a fresh process: same seed, epoch 3, 4 batches already trained on
    resumed.set_epoch(3)
    resumed.skip_next(4)
    assert _drawn(resumed) == uninterrupted[4 * 32 :]
    assert len(set(uninterrupted)) < len(uninterrupted)  # drawn with replacement


def test_weighted_draws_are_for_training_only():
    split = _imbalanced(20, 5)
    with pytest.raises(ValueError, match="for training"):
        build_loader(
            split, batch_size=4, train=False, device="cpu", seed=0, weights=balanced_weights(split.labels)
        )
    with pytest.raises(ValueError, match="non-negative"):
        TensorLoader(split.images, split.labels, 4, shuffle=True, weights=torch.zeros(20))


def test_an_image_unreadable_mid_run_is_one_short_line_without_the_worker_traceback(tmp_path):
    from torch.utils.data import DataLoader

    from ignite_cv.data.loaders import FileImageDataset, ImageReadError

    make_class_tree(tmp_path, {"a": 2, "b": 2})
    files = sorted(str(p) for p in tmp_path.rglob("*.png"))
    dataset = FileImageDataset(files, [0] * len(files), 8, 3)
    with open(files[0], "wb") as handle:  # damaged after the scan
        handle.write(b"garbage")
    with pytest.raises(ImageReadError) as caught:
        list(DataLoader(dataset, batch_size=2, num_workers=1))
    message = str(caught.value)
    assert message.startswith(f"cannot read image {files[0]} (") and "Traceback" not in message
    assert "restore or remove the file" in message and len(message) < 400
