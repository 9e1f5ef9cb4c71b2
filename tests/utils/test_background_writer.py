import threading

import pytest

from ignite_cv.utils.background_writer import BackgroundWriter, InlineWriter


def test_writes_run_off_the_calling_thread_in_submission_order():
    writer = BackgroundWriter(max_pending=3)
    release = threading.Event()
    seen: list[tuple[int, str]] = []

    def write(i: int) -> None:
        release.wait(5)
        seen.append((i, threading.current_thread().name))

    for i in range(3):
        writer.submit(write, i)
    assert writer.pending == 3 and seen == []  # the caller did not wait for any of them
    release.set()
    writer.close()
    assert [i for i, _ in seen] == [0, 1, 2]
    assert all(name.startswith("ignite_cv-writer") for _, name in seen)


def test_submit_waits_for_the_oldest_write_beyond_max_pending():
    writer = BackgroundWriter(max_pending=1)
    done: list[int] = []
    release = threading.Event()
    writer.submit(lambda: (release.wait(5), done.append(1)))
    threading.Timer(0.2, release.set).start()
    writer.submit(lambda: done.append(2))  # blocks until write 1 finished
    assert done[0] == 1
    writer.close()
    assert done == [1, 2]


def test_a_failed_write_is_raised_by_the_next_call():
    writer = BackgroundWriter()

    def fail() -> None:
        raise OSError("disk full")

    writer.submit(fail)
    with pytest.raises(OSError, match="disk full"):
        writer.wait()
    writer.close()


def test_inline_writer_writes_at_once():
    out: list[int] = []
    InlineWriter().submit(out.append, 7)
    assert out == [7]


def test_max_pending_must_be_positive():
    with pytest.raises(ValueError, match="max_pending must be >= 1, got 0"):
        BackgroundWriter(max_pending=0)


def test_a_writes_future_waits_for_it_alone():
    writer = BackgroundWriter()
    release = threading.Event()
    done: list[int] = []
    first = writer.submit(done.append, 1)
    writer.submit(lambda: (release.wait(5), done.append(2)))
    first.result(timeout=5)  # returns while the second write is still held
    assert done == [1] and writer.pending == 1
    release.set()
    writer.close()
    assert done == [1, 2]
    assert InlineWriter().submit(done.append, 3).done() and done[-1] == 3
