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


def test_reports_figures_and_the_statistics_cache_are_written_through_this_module(tmp_path, monkeypatch):
    import os

    import numpy as np
    import torch

    from ignite_cv.config import TrainConfig
    from ignite_cv.figures import save_figure, text_figure
    from ignite_cv.pipeline.normalize import resolve_normalization
    from ignite_cv.report import write_test_report
    from ignite_cv.utils import atomic

    renamed: list[str] = []
    real_replace = os.replace

    def spy(src, dst):
        assert "atomic.py" in __import__("traceback").extract_stack()[-2].filename  # called from atomic
        renamed.append(os.path.basename(dst))
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", spy)
    y = np.array([0, 1, 1, 0])
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])
    write_test_report(tmp_path / "report", y, probs, ["a", "b"])
    save_figure(text_figure("x"), tmp_path / "fig.png")
    batches = lambda: iter([torch.randint(0, 256, (8, 1, 4, 4), dtype=torch.uint8)])  # noqa: E731
    resolve_normalization(TrainConfig(normalize="meanstd"), 1, batches, "f" * 64, tmp_path / "cache")
    written = {p.name for p in (tmp_path / "report").iterdir()} | {"fig.png"}
    written |= {p.name for p in (tmp_path / "cache").iterdir()}
    assert set(renamed) == written
    assert {"report.json", "confusion_matrix.png", "fig.png"} <= set(renamed)
    assert any(
        name.startswith("meanstd") or name.endswith(".json") for name in os.listdir(tmp_path / "cache")
    )


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
