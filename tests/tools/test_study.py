"""tools/study.py: bad input is one line and exit 2 with nothing written; a study's folder is read by
tools/compare.py, whose output folder inside it is never taken for a run."""

from __future__ import annotations

import json

import pytest

from ignite_cv.studies.compare import default_output_dir
from ignite_cv.studies.runs import collect_runs
from tests.recipe_utils import load_tool


def _main(argv):
    return load_tool("study").main(argv)


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["mlp", "--grid", "inti=kaiming,xavier"], "recipe mlp has no option --inti"),
        (["mlp", "--grid", "init=he,xavier"], "unknown --init 'he'"),
        (["mlp", "--grid", "epochs=2,2.5"], "--epochs must be a whole number, got '2.5'"),
        (["mlp,tinyvgg", "--grid", "hidden_units=4,8"], "recipe mlp has no option --hidden-units"),
        (["mlp", "--grid", "init"], "has no '='"),
        (["mlp", "--bogus", "3"], "unknown flag --bogus"),
        (["mlp", "--run-name", "x"], "set by the study"),
        (["nosuch"], "no recipe 'nosuch'"),
        (["mlp,mlp"], "recipe mlp is given twice"),
        (["mlp", "--epochs", "0"], "below its minimum"),
        (["mlp", "--grid", "lr=0.1,0.2", "--lr", "0.3"], "--lr is both on the grid and a flag"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, args, problem):
    study = tmp_path / "study"
    with pytest.raises(SystemExit) as info:
        _main([*args, "--output-dir", str(study)])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and problem in err
    assert not study.exists()


def test_a_study_folder_is_compared_and_its_compare_folder_is_not_a_run(tmp_path, capsys):
    study = tmp_path / "study"
    argv = ["mlp", "--grid", "init=kaiming", "--epochs", "1", "--hidden-sizes", "8", "--workers", "0"]
    argv += ["--image-grid-every", "0", "--live-curves", "no", "--output-dir", str(study)]
    data = _main(argv)
    assert [(r["run"], r["status"]) for r in data["runs"]] == [("init=kaiming", "finished")]
    out = capsys.readouterr().out
    assert out.startswith(f"study {study}: 1 runs (0 finished, 0 to resume, 1 to train)")
    assert "| init=kaiming | finished | kaiming |" in out
    assert [r.name for r in collect_runs([study])] == ["init=kaiming"]  # .stats-cache is not a run
    assert default_output_dir([study]) == study / "compare"
    (study / "compare").mkdir()
    (study / "compare" / "metrics.csv").write_text("run\ninit=kaiming\n")  # what compare leaves there
    assert [r.name for r in collect_runs([study])] == ["init=kaiming"]
    _main([*argv, "--dry-run"])
    assert capsys.readouterr().out.splitlines() == [
        f"study {study}: 1 runs (1 finished, 0 to resume, 0 to train)",
        "  [1] init=kaiming: skip",
    ]
    assert json.loads((study / "study.json").read_text())["fields"] == ["init"]
