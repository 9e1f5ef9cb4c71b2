"""The ensemble manifest: hashes and weights round-trip; changed files and mixed classes are refused."""

from __future__ import annotations

import hashlib
import json

import pytest

from ignite_cv.ensemble.manifest import check_weights, file_sha256, normalized, read_manifest, write_manifest
from ignite_cv.utils.errors import UserError
from tests.inference.conftest import make_checkpoint


def test_a_manifest_round_trips_with_relative_and_absolute_paths(tmp_path):
    inside = make_checkpoint(tmp_path / "study" / "fold-0" / "a.safetensors", seed=1)
    outside = make_checkpoint(tmp_path / "elsewhere" / "b.safetensors", seed=2)
    path = tmp_path / "study" / "ensemble.json"
    written = write_manifest(path, [inside, outside], [2.0, 1.0])
    stored = json.loads(path.read_text())
    assert stored == written
    assert [m["checkpoint"] for m in stored["members"]] == ["fold-0/a.safetensors", str(outside.resolve())]
    assert stored["members"][0]["sha256"] == hashlib.sha256(inside.read_bytes()).hexdigest()
    assert stored["class_names"] == ["cat", "dog"]
    manifest = read_manifest(path)
    assert manifest.checkpoints == [path.parent / "fold-0" / "a.safetensors", outside.resolve()]
    assert manifest.weights == [2.0, 1.0] and manifest.class_names == ["cat", "dog"]


def test_a_changed_or_missing_checkpoint_is_refused(tmp_path):
    a = make_checkpoint(tmp_path / "a.safetensors", seed=1)
    path = tmp_path / "ensemble.json"
    write_manifest(path, [a])
    make_checkpoint(a, seed=5)  # the same name, other weights
    with pytest.raises(UserError, match=r"a\.safetensors has changed since the ensemble manifest .*SHA-256"):
        read_manifest(path)
    a.unlink()
    with pytest.raises(UserError, match="which does not exist"):
        read_manifest(path)


def test_foreign_files_are_not_manifests(tmp_path):
    (tmp_path / "x.json").write_text('{"members": []}')
    with pytest.raises(UserError, match="is not an ensemble manifest"):
        read_manifest(tmp_path / "x.json")
    (tmp_path / "y.json").write_text("not json")
    with pytest.raises(UserError, match="is not an ensemble manifest"):
        read_manifest(tmp_path / "y.json")
    with pytest.raises(UserError, match="does not exist"):
        read_manifest(tmp_path / "z.json")


def test_checkpoints_with_different_class_names_are_refused(tmp_path):
    a = make_checkpoint(tmp_path / "a.safetensors")
    b = make_checkpoint(tmp_path / "b.safetensors", classes=("cat", "fox"))
    with pytest.raises(UserError, match=r"different class names: a\.safetensors has \[cat, dog\], b"):
        write_manifest(tmp_path / "e.json", [a, b])
    assert not (tmp_path / "e.json").exists()


def test_weights():
    assert check_weights(None, 3) == [1.0, 1.0, 1.0]
    assert normalized([1.0]) == [1.0] and normalized([3.0, 1.0]) == [0.75, 0.25]
    with pytest.raises(UserError, match="2 weights for 3 checkpoints"):
        check_weights([1, 2], 3)
    with pytest.raises(UserError, match="must be >= 0 and not all 0"):
        check_weights([0, 0], 2)
    with pytest.raises(UserError, match="must be >= 0"):
        check_weights([1, -1], 2)


def test_file_sha256_is_the_hash_of_the_bytes(tmp_path):
    (tmp_path / "f").write_bytes(b"x" * 3_000_000)
    assert file_sha256(tmp_path / "f") == hashlib.sha256(b"x" * 3_000_000).hexdigest()
