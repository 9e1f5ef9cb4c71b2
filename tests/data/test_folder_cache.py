"""An image folder decoded once: reused when nothing changed, rebuilt when anything that shapes the pixels
changed, never a wrong image; bad cache folders cost one line; concurrent builders; training results."""

from __future__ import annotations

import errno
import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from ignite_cv.data import decode_cache, decode_pass, folder_cache
from ignite_cv.data.decode_cache import DecodeSettings
from ignite_cv.data.folder import decode_image, list_tree, scan_tree
from ignite_cv.data.folder_cache import decode_folder, resolve_cache_dir
from ignite_cv.data.loaders import materialize
from ignite_cv.data.sources import load_data
from ignite_cv.data.splits import Split
from ignite_cv.utils.errors import UserError
from tests.data.data_helpers import make_class_tree, make_messy_tree, make_options, write_image, zip_tree

SETTINGS = DecodeSettings(channels=3, size=(8, 8), center_crop=False)


class Decodes:
    """Counts the files the decode pass opens (in this process: ``processes=0``)."""

    def __init__(self, monkeypatch):
        self.count = 0
        real = decode_pass.decode_or_reason

        def counting(*args, **kwargs):
            self.count += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(decode_pass, "decode_or_reason", counting)

    def take(self) -> int:
        count, self.count = self.count, 0
        return count


@pytest.fixture
def decodes(monkeypatch) -> Decodes:
    return Decodes(monkeypatch)


def _decode(root: Path, cache: Path | None, settings: DecodeSettings = SETTINGS, **kwargs):
    messages: list[str] = []
    result = decode_folder(
        list_tree(root),
        settings,
        cache_dir=cache,
        processes=0,
        say=messages.append,
        show_progress=False,
        **kwargs,
    )
    return result, messages


def _reference(root: Path, settings: DecodeSettings = SETTINGS) -> np.ndarray:
    """The readable candidates decoded one by one with decode_image (the DataLoader workers' decode)."""
    listing = list_tree(root)
    scan = scan_tree(root, settings.channels)
    readable = {ref for refs, _ in scan.splits.values() for ref in refs}
    images = [
        decode_image(ref, settings.channels, settings.size, settings.center_crop).numpy()
        for _, _, ref in listing.candidates
        if ref in readable
    ]
    return np.stack(images)


def _entries(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.glob("*.icvcache"))


def test_second_load_decodes_nothing_and_gives_the_same_pixels(tmp_path, decodes):
    root, cache = make_messy_tree(tmp_path / "tree"), tmp_path / "cache"
    first, said = _decode(root, cache)
    assert first.status == "built" and decodes.take() == 106 and len(_entries(cache)) == 1
    assert len(said) == 1 and said[0].startswith("decoded 104 images, 2 unreadable in ")
    assert said[0].endswith(f" s with 1 process; cached in {first.path}")
    second, said = _decode(root, cache)
    assert second.status == "reused" and decodes.take() == 0
    assert said == [f"data cache: 104 decoded images from {second.path}"]
    reference = _reference(root)
    assert first.images.dtype == np.uint8 and np.array_equal(first.images, reference)
    assert np.array_equal(second.images, reference)
    assert second.reasons == first.reasons and sum(r is not None for r in first.reasons) == 2


def test_cached_bundle_equals_the_uncached_one_and_the_file_decode(tmp_path, decodes):
    root = make_messy_tree(tmp_path / "tree")
    options = dict(dataset="folder", data_root=str(root), image_size=8, cache_dir=str(tmp_path / "c"))
    built = load_data(make_options(**options), seed=3)
    reused = load_data(make_options(**options), seed=3)
    assert decodes.take() == 106
    uncached = load_data(make_options(**options, no_cache=True), seed=3)
    assert decodes.take() == 106
    scanned = scan_tree(root, 3)
    for bundle in (built, reused, uncached):
        assert bundle.skipped == scanned.skipped  # same messages, same order as the validation scan
        for name in ("train", "val", "test"):
            split, other = getattr(bundle, name), getattr(built, name)
            assert split.in_memory and split.files == other.files
            assert torch.equal(split.labels, other.labels)
            files_only = materialize(Split(labels=split.labels, files=split.files), 8, 3)
            assert torch.equal(split.images, files_only.images)


@pytest.mark.parametrize("change", ["content", "mtime", "added", "removed"])
def test_a_changed_file_rebuilds_and_replaces_the_entry(tmp_path, decodes, change):
    root, cache = tmp_path / "tree", tmp_path / "cache"
    make_class_tree(root, {"a": 3, "b": 3})
    _decode(root, cache)
    old = _entries(cache)
    image = root / "a" / "img_000.png"
    if change == "content":
        write_image(image, value=200, size=(20, 10))
    elif change == "mtime":
        stat = image.stat()
        os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    elif change == "added":
        write_image(root / "b" / "new.png", value=99)
    else:
        image.unlink()
    decodes.take()
    result, _ = _decode(root, cache)
    expected = {"content": 6, "mtime": 6, "added": 7, "removed": 5}[change]
    assert result.status == "built" and decodes.take() == expected
    assert np.array_equal(result.images, _reference(root))
    assert len(_entries(cache)) == 1 and _entries(cache) != old  # the stale entry is gone


def test_a_changed_decode_setting_has_its_own_entry(tmp_path, decodes):
    root, cache = tmp_path / "tree", tmp_path / "cache"
    make_class_tree(root, {"a": 3, "b": 3})
    _decode(root, cache)
    decodes.take()
    for settings in (
        DecodeSettings(3, (6, 8), False),
        DecodeSettings(3, (8, 8), True),
        DecodeSettings(1, (8, 8), False),
    ):
        result, _ = _decode(root, cache, settings)
        assert result.status == "built" and decodes.take() == 6
        assert np.array_equal(result.images, _reference(root, settings))
    assert len(_entries(cache)) == 4
    again, _ = _decode(root, cache)
    assert again.status == "reused" and decodes.take() == 0


def test_a_zip_member_change_rebuilds(tmp_path, decodes):
    make_class_tree(tmp_path / "src", {"a": 3, "b": 3})
    archive = zip_tree(tmp_path / "src", tmp_path / "d.zip")
    cache = tmp_path / "cache"
    assert _decode(archive, cache)[0].status == "built"
    assert _decode(archive, cache)[0].status == "reused"
    write_image(tmp_path / "src" / "a" / "img_001.jpg", value=7)
    zip_tree(tmp_path / "src", archive)
    decodes.take()
    result, _ = _decode(archive, cache)
    assert result.status == "built" and decodes.take() == 6
    assert np.array_equal(result.images, _reference(archive))


_PIXEL = decode_cache.DATA_OFFSET + 5


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda raw: raw.__setitem__(_PIXEL, raw[_PIXEL] ^ 1), "damaged (checksum of its pixels)"),
        (lambda raw: raw.__delitem__(slice(-7, None)), "truncated or padded"),
        (lambda raw: raw.__setitem__(slice(8, 12), (7).to_bytes(4, "little")), "written by another version"),
    ],
)  # fmt: skip
def test_a_damaged_or_foreign_entry_is_rebuilt_never_used(tmp_path, decodes, damage, problem):
    root, cache = tmp_path / "tree", tmp_path / "cache"
    make_class_tree(root, {"a": 3, "b": 3})
    built, _ = _decode(root, cache)
    raw = bytearray(built.path.read_bytes())
    damage(raw)
    built.path.write_bytes(bytes(raw))
    decodes.take()
    result, said = _decode(root, cache)
    assert result.status == "built" and decodes.take() == 6
    assert len(said) == 2 and said[0].startswith(f"data cache: {built.path} cannot be used ({problem}")
    assert said[0].endswith("; rebuilding it") and said[1].endswith(f"; cached in {built.path}")
    assert np.array_equal(result.images, _reference(root))
    assert _decode(root, cache)[0].status == "reused"


def test_unreadable_files_are_listed_and_strict_stops_at_the_first_also_when_cached(tmp_path):
    root = make_messy_tree(tmp_path / "tree")
    options = dict(dataset="folder", data_root=str(root), image_size=8, cache_dir=str(tmp_path / "c"))
    with pytest.raises(UserError) as uncached:
        load_data(make_options(**options, strict_data=True, no_cache=True), seed=0)
    load_data(make_options(**options), seed=0)  # builds the entry
    with pytest.raises(UserError) as cached:
        load_data(make_options(**options, strict_data=True), seed=0)
    assert str(cached.value) == str(uncached.value)
    assert str(cached.value).startswith(
        f"cannot read image {root / 'good' / 'corrupt.jpg'}: not a readable image"
    )


def test_a_folder_that_cannot_hold_the_cache_costs_one_line(tmp_path, decodes):
    root = tmp_path / "tree"
    make_class_tree(root, {"a": 3, "b": 3})
    (tmp_path / "file").write_text("a file, not a folder")
    blocked = tmp_path / "file" / "cache"
    result, said = _decode(root, blocked)
    assert result.status == "uncached" and result.path is None and decodes.take() == 6
    assert said[0] == f"data cache: cannot use {blocked} (Not a directory); continuing without the cache"
    assert len(said) == 2 and said[1].startswith("decoded 6 images in ") and "cached" not in said[1]
    assert np.array_equal(result.images, _reference(root))


def test_a_full_disk_costs_one_line_and_leaves_no_file(tmp_path, decodes, monkeypatch):
    root, cache = tmp_path / "tree", tmp_path / "cache"
    make_class_tree(root, {"a": 40, "b": 40})

    def full(self, images):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(decode_cache.EntryWriter, "write", full)
    result, said = _decode(root, cache)
    assert result.status == "uncached" and decodes.take() == 80
    path = _entry_path(root, cache)
    assert (
        said[0] == f"data cache: cannot write {path} (No space left on device); continuing without the cache"
    )
    assert len(said) == 2 and said[1].startswith("decoded 80 images in ") and "cached" not in said[1]
    assert np.array_equal(result.images, _reference(root))
    assert [p.suffix for p in cache.iterdir()] == [".lock"]  # no entry, no temporary file


def _entry_path(root: Path, cache: Path, settings: DecodeSettings = SETTINGS) -> Path:
    listing = list_tree(root)
    content = decode_cache.content_digest(listing)
    return cache / f"{decode_cache.entry_stem(listing.root, settings)}-{content[:16]}{decode_cache.SUFFIX}"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores folder permissions")
def test_a_read_only_cache_folder_costs_one_line(tmp_path, decodes):
    root, cache = tmp_path / "tree", tmp_path / "cache"
    make_class_tree(root, {"a": 3, "b": 3})
    cache.mkdir()
    cache.chmod(0o555)
    try:
        result, said = _decode(root, cache)
    finally:
        cache.chmod(0o755)
    assert result.status == "uncached" and decodes.take() == 6
    assert said[0] == f"data cache: cannot use {cache} (Permission denied); continuing without the cache"


def test_a_valid_entry_in_a_read_only_folder_is_still_read(tmp_path, decodes, monkeypatch):
    root, cache = tmp_path / "tree", tmp_path / "cache"
    make_class_tree(root, {"a": 3, "b": 3})
    _decode(root, cache)
    decodes.take()

    def no_lock(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(decode_cache, "entry_lock", no_lock)  # reading needs no lock
    result, _ = _decode(root, cache)
    assert result.status == "reused" and decodes.take() == 0


def test_too_large_for_memory_streams_from_the_memory_mapped_entry(tmp_path, monkeypatch):
    root = tmp_path / "tree"
    make_class_tree(root, {"a": 10, "b": 10})
    cache = tmp_path / "cache"
    monkeypatch.setattr(folder_cache, "DEFAULT_MEMORY_BUDGET", 0)
    options = make_options(dataset="folder", data_root=str(root), image_size=8, cache_dir=str(cache))
    for _ in range(2):  # built, then reused
        bundle = load_data(options, seed=0)
        for split in (bundle.train, bundle.val, bundle.test):
            files_only = materialize(Split(labels=split.labels, files=split.files), 8, 3)
            assert torch.equal(split.images, files_only.images)
    # the entry and, as the three splits are carved out of one folder, one memory-mapped copy per split
    assert len(_entries(cache)) == 4
    maps = Path("/proc/self/maps")
    if maps.exists():  # Linux: the splits' pixels are pages of the cache files, not copies in memory
        mapped = maps.read_text()
        assert sum(name in mapped for name in _entries(cache)) >= 3
    uncached = load_data(
        make_options(dataset="folder", data_root=str(root), image_size=8, no_cache=True), seed=0
    )
    assert not uncached.train.in_memory and uncached.train.files == bundle.train.files


def _build_in_child(root, cache, barrier, queue, use_lock):
    import time

    from ignite_cv.data import decode_cache as dc
    from ignite_cv.data import decode_pass as dp

    if not use_lock:
        dc.fcntl = None
    real = dp.decode_or_reason

    def slow(*args, **kwargs):
        time.sleep(0.01)
        return real(*args, **kwargs)

    dp.decode_or_reason = slow
    messages: list[str] = []
    barrier.wait()
    result = decode_folder(
        list_tree(root), SETTINGS, cache_dir=cache, processes=0, say=messages.append, show_progress=False
    )
    queue.put((result.status, messages, result.images.tobytes()))


@pytest.mark.parametrize("use_lock", [True, False])
def test_two_processes_building_the_same_entry_do_not_corrupt_it(tmp_path, use_lock):
    root, cache = tmp_path / "tree", tmp_path / "cache"
    make_class_tree(root, {"a": 10, "b": 10})
    ctx = multiprocessing.get_context("fork")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_build_in_child, args=(root, cache, barrier, queue, use_lock)) for _ in range(2)
    ]
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    reference = _reference(root)
    assert all(pixels == reference.tobytes() for _, _, pixels in results)
    statuses = sorted(status for status, _, _ in results)
    if use_lock:  # the second waits, then reads the first one's entry
        assert statuses == ["built", "reused"]
        waited = [m for _, messages, _ in results for m in messages if "waiting for another process" in m]
        assert len(waited) == 1
    else:  # both decode and rename complete, identical files: the last one wins
        assert statuses == ["built", "built"]
    (entry,) = cache.glob("*.icvcache")
    assert not list(cache.glob(".*.tmp"))
    content = decode_cache.content_digest(list_tree(root))
    stored = decode_cache.read_entry(entry, decode_cache.entry_key(content, SETTINGS), SETTINGS, 20, True)
    assert np.array_equal(stored.images, reference)


def test_cache_dir_resolution():
    class Options:
        no_cache, cache_dir, output_dir = False, "", "runs"

    options = Options()
    assert resolve_cache_dir(options) == Path("runs") / ".data-cache"
    options.cache_dir = "~/cache"
    assert resolve_cache_dir(options) == Path("~/cache").expanduser()
    options.no_cache = True
    assert resolve_cache_dir(options) is None
    assert resolve_cache_dir(make_options()) is None  # data options alone (tools): no output_dir


def test_deterministic_training_is_identical_with_and_without_the_cache(tmp_path, decodes):
    from safetensors.torch import load_file

    from tests.recipe_utils import load_recipe

    root, cache = tmp_path / "tree", tmp_path / "cache"
    make_class_tree(root, {"a": 24, "b": 24, "c": 24})
    options = dict(dataset="folder", data_root=str(root), image_size=8, cache_dir=str(cache))
    load_data(make_options(**options), seed=0)  # builds the entry
    assert decodes.take() == 72
    recipe = load_recipe("tinyvgg")
    common = ["--dataset", "folder", "--data-root", str(root), "--image-size", "8", "--epochs", "2"]
    common += ["--batch-size", "16", "--hidden-units", "4", "--deterministic", "--workers", "0"]
    common += ["--output-dir", str(tmp_path / "runs")]
    weights = {}
    for name, extra in (("cached", ["--cache-dir", str(cache)]), ("uncached", ["--no-cache"])):
        summary = recipe.run_recipe(recipe.TinyVGGRecipe, argv=[*common, "--run-name", name, *extra])
        weights[name] = load_file(summary["best_checkpoint"])
        assert decodes.take() == (0 if name == "cached" else 72)
    assert not (tmp_path / "runs" / ".data-cache").exists()
    cached, uncached = weights["cached"], weights["uncached"]
    assert cached.keys() == uncached.keys() and len(cached) > 0
    assert all(torch.equal(cached[k], uncached[k]) for k in cached)


def test_permute_rows_in_place_equals_fancy_indexing():
    from ignite_cv.data.folder_cache import permute_rows

    rng = np.random.default_rng(0)
    for n in (0, 1, 2, 7, 100):
        array = rng.integers(0, 256, size=(n, 2, 3, 3), dtype=np.uint8)
        order = rng.permutation(n)
        expected = array[order]
        permute_rows(array, order)
        assert np.array_equal(array, expected)


def test_in_memory_splits_are_views_of_one_array(tmp_path):
    from ignite_cv.data.folder_cache import split_pixels

    root = tmp_path / "tree"
    make_class_tree(root, {"a": 6, "b": 6})
    decoded, _ = _decode(root, None)
    before = decoded.images.copy()
    rows = [np.array([0, 2, 5, 7, 9]), np.array([1, 3, 4]), np.array([6, 8, 10, 11])]
    pixels = split_pixels(decoded, rows, None)
    for part, picked in zip(pixels, rows):
        assert np.shares_memory(part, decoded.images) and np.array_equal(part, before[picked])
    with pytest.raises(ValueError, match="every decoded row exactly once"):
        split_pixels(decoded, [np.array([0, 1])], None)


def test_an_error_of_the_pass_itself_is_not_taken_for_a_full_disk(tmp_path, monkeypatch):
    root, cache = tmp_path / "tree", tmp_path / "cache"
    make_class_tree(root, {"a": 3, "b": 3})

    def broken(*args, **kwargs):
        raise OSError(errno.EAGAIN, "Resource temporarily unavailable")
        yield  # a generator, as decode_chunks is

    monkeypatch.setattr(folder_cache, "decode_chunks", broken)
    with pytest.raises(OSError, match="Resource temporarily unavailable"):
        _decode(root, cache)
    assert [p.suffix for p in cache.iterdir()] == [".lock"]  # the temporary entry is gone
