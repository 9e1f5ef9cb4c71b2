"""The decode pass: processes give the chunks, pixels and reasons of one process, in order."""

from __future__ import annotations

import numpy as np
import pytest

from ignite_cv.data import decode_pass
from ignite_cv.data.decode_pass import decode_chunks
from ignite_cv.data.folder import check_image, decode_image, list_tree
from tests.data.data_helpers import make_messy_tree


@pytest.fixture(scope="module")
def refs(tmp_path_factory) -> list[str]:
    root = make_messy_tree(tmp_path_factory.mktemp("pass") / "tree")
    return [ref for _, _, ref in list_tree(root).candidates]


def _run(refs, processes, **kwargs):
    return list(decode_chunks(refs, 3, (6, 7), True, processes, **kwargs))


def test_processes_match_one_process_in_order(refs, monkeypatch):
    monkeypatch.setattr(decode_pass, "POOL_MIN_FILES", 0)
    alone, pooled = _run(refs, 0, chunk_files=8), _run(refs, 2, chunk_files=8)
    assert [(c.start, c.count) for c in pooled] == [
        (s, min(8, len(refs) - s)) for s in range(0, len(refs), 8)
    ]
    assert [(c.start, c.count, c.unreadable) for c in pooled] == [
        (c.start, c.count, c.unreadable) for c in alone
    ]
    images = np.concatenate([c.images for c in pooled])
    assert np.array_equal(images, np.concatenate([c.images for c in alone]))
    # the same reasons as the validation scan, and the same pixels as the DataLoader workers' decode
    unreadable = [u for c in pooled for u in c.unreadable]
    assert unreadable == [(i, check_image(r, 3)) for i, r in enumerate(refs) if check_image(r, 3) is not None]
    assert len(unreadable) == 2 and images.shape == (len(refs) - 2, 3, 6, 7)
    readable = [r for i, r in enumerate(refs) if i not in dict(unreadable)]
    assert np.array_equal(images, np.stack([decode_image(r, 3, (6, 7), True).numpy() for r in readable]))


def test_closing_early_stops_the_workers(refs, monkeypatch):
    monkeypatch.setattr(decode_pass, "POOL_MIN_FILES", 0)
    chunks = decode_chunks(refs, 1, (4, 4), False, 2, chunk_files=4)
    first = next(chunks)
    chunks.close()
    assert (first.start, first.count) == (0, 4)
    assert first.images.shape == (4 - len(first.unreadable), 1, 4, 4)
