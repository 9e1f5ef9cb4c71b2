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
