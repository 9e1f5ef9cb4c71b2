import pytest

from ignite_cv.handlers.history import MetricsHistory, epoch_row
from ignite_cv.utils.background_writer import BackgroundWriter


@pytest.mark.parametrize("writer", [None, BackgroundWriter], ids=["inline", "background-writer"])
def test_rows_append_and_a_line_cut_by_a_kill_is_dropped_on_resume(tmp_path, writer):
    history = MetricsHistory(tmp_path / "metrics.jsonl", writer() if writer else None)
    for epoch in (1, 2, 3):
        history.append(epoch_row(epoch, "train", 0.1, 1.0, {"loss": 1.0 / epoch}, {"accuracy": 0.5}))
    history.writer.wait()
    with open(history.path, "a") as handle:
        handle.write('{"epoch": 4, "train/lo')  # killed mid-write
    assert [r["epoch"] for r in history.rows()] == [1, 2, 3]
    history.truncate(2)  # resuming after epoch 2
    history.append(epoch_row(3, "train", 0.1, 1.0, {"loss": 0.3}, {"accuracy": 0.6}))
    rows = history.rows()
    assert [r["epoch"] for r in rows] == [1, 2, 3] and rows[-1]["val/accuracy"] == 0.6
    assert history.path.read_text().count("\n") == 3
    history.writer.close()
