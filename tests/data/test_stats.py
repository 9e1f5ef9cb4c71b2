"""ignite_cv.data.stats: fingerprints, exact channel statistics, class counts; tools/dataset_stats.py."""

from __future__ import annotations

import importlib.util
import re
import sys

import numpy as np
import pytest
import torch

from ignite_cv.data.splits import Split
from ignite_cv.data.stats import channel_stats, class_counts, fingerprint_split, split_batches
from tests.conftest import REPO, SHARED_DATA


def test_fingerprint_follows_content():
    images = torch.randint(0, 256, (10, 1, 4, 4), dtype=torch.uint8)
    labels = torch.arange(10) % 3
    base = fingerprint_split(Split(labels=labels, images=images))
    assert base == fingerprint_split(Split(labels=labels.clone(), images=images.clone()))
    changed = images.clone()
    changed[3, 0, 1, 2] ^= 1
    assert fingerprint_split(Split(labels=labels, images=changed)) != base
    assert fingerprint_split(Split(labels=labels.roll(1), images=images)) != base
    assert fingerprint_split(Split(labels=labels, images=images.reshape(10, 1, 2, 8))) != base


def test_file_fingerprint_ignores_order_but_not_refs_labels_or_decoding():
    files, labels = ["b.png", "a.png", "c.png"], torch.tensor([1, 0, 1])
    base = fingerprint_split(Split(labels=labels, files=files))
    assert base == fingerprint_split(Split(labels=torch.tensor([0, 1, 1]), files=["a.png", "b.png", "c.png"]))
    assert fingerprint_split(Split(labels=torch.tensor([1, 1, 1]), files=files)) != base
    assert fingerprint_split(Split(labels=labels, files=["b.png", "a.png", "d.png"])) != base
    assert fingerprint_split(Split(labels=labels, files=files), {"size": (32, 32)}) != base


def test_channel_stats_float_batches_match_numpy():
    x = torch.rand(200, 3, 5, 5, dtype=torch.float64) * torch.tensor([1.0, 2.0, 0.1]).view(1, 3, 1, 1)
    mean, std, count = channel_stats(x[i : i + 33] for i in range(0, 200, 33))
    assert count == 200
    np.testing.assert_allclose(mean, x.numpy().mean(axis=(0, 2, 3)), rtol=0, atol=1e-12)
    np.testing.assert_allclose(std, x.numpy().std(axis=(0, 2, 3)), rtol=0, atol=1e-12)


def test_channel_stats_does_not_depend_on_batching():
    images = torch.randint(0, 256, (100, 3, 4, 4), dtype=torch.uint8)
    split = Split(labels=torch.zeros(100, dtype=torch.int64), images=images)
    assert channel_stats(split_batches(split, 7)) == channel_stats(split_batches(split, 100))


def test_channel_stats_rejects_empty_and_mixed_input():
    with pytest.raises(ValueError, match="no images"):
        channel_stats([])
    with pytest.raises(ValueError, match="channels"):
        channel_stats(
            [torch.zeros(1, 3, 2, 2, dtype=torch.uint8), torch.zeros(1, 1, 2, 2, dtype=torch.uint8)]
        )


def test_class_counts():
    split = Split(labels=torch.tensor([0, 2, 2, 2]), images=torch.zeros(4, 1, 1, 1, dtype=torch.uint8))
    assert class_counts(split, 4) == [1, 0, 3, 0]


def load_tool():
    """tools/dataset_stats.py as a module (tools/ is not a package)."""
    name = "ignite_cv_tools_dataset_stats"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "tools" / "dataset_stats.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the class is created
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.mark.skipif(
    not (SHARED_DATA / "fashion-mnist").is_dir(), reason="../shared/data/fashion-mnist is absent"
)
def test_dataset_stats_tool_on_fashion_mnist(capsys):
    tool = load_tool()
    tool.main(["--dataset", "fashion-mnist", "--data-root", str(SHARED_DATA / "fashion-mnist")])
    out = capsys.readouterr().out
    mean, std = map(float, re.search(r"^\s+0\s+([\d.]+)\s+([\d.]+)$", out, re.M).groups())
    assert abs(mean - 0.2860) < 5e-4 and abs(std - 0.3530) < 5e-4
    assert re.search(r"^Ankle boot\s+5400\s+600\s+1000$", out, re.M)


def test_dataset_stats_tool_user_error_is_one_line(capsys):
    tool = load_tool()
    with pytest.raises(SystemExit) as exit_info:
        tool.main(["--dataset", "npz", "--data-root", "/nonexistent/file.npz"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
