"""The run folder: a new one per run, never an existing one reused; names checked; files written whole."""

from __future__ import annotations

import json
import re

import pytest

from ignite_cv.run_folder import RunFolder
from ignite_cv.utils.errors import UserError


def test_a_new_folder_is_named_by_recipe_and_time(tmp_path):
    run = RunFolder.create(tmp_path, "tinyvgg")
    assert re.fullmatch(r"tinyvgg-\d{8}-\d{6}", run.path.name)
    assert run.path.parent == tmp_path and run.path.is_dir()
    assert (run.checkpoints, run.report, run.history) == (
        run.path / "checkpoints",
        run.path / "report",
        run.path / "metrics.jsonl",
    )


def test_an_existing_name_gets_the_next_suffix(tmp_path):
    names = [RunFolder.create(tmp_path, "r", "mine").path.name for _ in range(3)]
    assert names == ["mine", "mine-2", "mine-3"]


@pytest.mark.parametrize("name", ["a/b", "..", "."])
def test_a_run_name_that_is_not_a_folder_name_is_refused(tmp_path, name):
    with pytest.raises(UserError, match="is not a folder name"):
        RunFolder.create(tmp_path, "r", name)


def test_an_output_dir_that_cannot_be_created_is_a_one_line_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match=r"cannot create --output-dir .*file/runs"):
        RunFolder.create(blocker / "runs", "r")


def test_json_and_text_are_written_whole_without_temporary_files(tmp_path):
    run = RunFolder.create(tmp_path, "r", "x")
    run.write_json("config.json", {"epochs": 3})
    run.write_text("data_skipped.txt", "a\n")
    assert json.loads((run.path / "config.json").read_text()) == {"epochs": 3}
    assert sorted(p.name for p in run.path.iterdir()) == ["config.json", "data_skipped.txt"]
