import pytest

from ignite_cv.utils.atomic import write_atomic, write_json_atomic


def test_failed_write_leaves_the_previous_file_intact(tmp_path):
    target = tmp_path / "state.json"
    write_json_atomic(target, {"epoch": 1})

    def crash(tmp):
        tmp.write_text('{"epoch": 2, "trunc')
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        write_atomic(target, crash)
    assert target.read_text().strip().endswith("}") and '"epoch": 1' in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_a_full_disk_under_safetensors_is_the_oserror_it_is(tmp_path, monkeypatch):
    import errno

    import safetensors.torch
    import torch
    from safetensors import SafetensorError

    from ignite_cv.utils.atomic import write_safetensors_atomic

    def full(*args, **kwargs):
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    target = tmp_path / "w.safetensors"
    with pytest.raises(OSError) as caught:
        write_safetensors_atomic(target, {"w": torch.zeros(1)})
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
    assert list(tmp_path.iterdir()) == []


def test_leftover_temp_files_are_removed_and_nothing_else(tmp_path):
    from ignite_cv.utils.atomic import remove_leftover_temp_files

    (tmp_path / "sub").mkdir()
    leftovers = [
        tmp_path / ".state.safetensors.ab12cd34.tmp",
        tmp_path / "sub" / ".metrics.jsonl.x9y8z7w6.tmp",
    ]
    kept = [tmp_path / "notes.tmp", tmp_path / "sub" / "last_epoch=1.safetensors", tmp_path / ".lock"]
    for path in leftovers + kept:
        path.write_text("x")
    assert sorted(remove_leftover_temp_files(tmp_path)) == sorted(leftovers)
    assert all(p.exists() for p in kept) and not any(p.exists() for p in leftovers)
