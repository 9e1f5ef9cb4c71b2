"""A user's mistake: one line naming the problem and the fix, exit status 2, no traceback, nothing lost."""

from __future__ import annotations

import pytest

from tests.recipe_utils import REPO, load_recipe, run_script

TINYVGG = load_recipe("tinyvgg")


def _fails(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        TINYVGG.run_recipe(TINYVGG.TinyVGGRecipe, argv=argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--dataset", "imagenet-21k"], "--dataset"),
        (["--optimizer", "lion"], "--optimizer"),
        (["--scheduler", "exponential"], "--scheduler"),
        (["--epochs", "three"], "--epochs"),
    ],
)
def test_bad_flags(argv, expected, capsys):
    assert expected in _fails(argv, capsys)


def test_missing_data_root(tmp_path, capsys):
    line = _fails(
        ["--dataset", "folder", "--data-root", str(tmp_path / "nowhere"), "--output-dir", str(tmp_path)],
        capsys,
    )
    assert "nowhere" in line


def test_folder_without_class_subfolders(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.png").write_bytes(b"not really")
    line = _fails(
        [
            "--dataset",
            "folder",
            "--data-root",
            str(tmp_path / "data"),
            "--output-dir",
            str(tmp_path / "runs"),
        ],
        capsys,
    )
    assert "class" in line


def test_batch_larger_than_the_data_set(tmp_path, capsys):
    line = _fails(["--batch-size", "100000", "--output-dir", str(tmp_path)], capsys)
    assert "--batch-size" in line


def test_existing_run_folder_is_never_reused(tmp_path):
    existing = tmp_path / "runs" / "mine"
    existing.mkdir(parents=True)
    (existing / "notes.txt").write_text("keep me")
    summary = TINYVGG.run_recipe(
        TINYVGG.TinyVGGRecipe,
        argv=[
            "--epochs",
            "1",
            "--output-dir",
            str(tmp_path / "runs"),
            "--run-name",
            "mine",
            "--workers",
            "0",
            "--hidden-units",
            "4",
        ],
    )
    assert (existing / "notes.txt").read_text() == "keep me"
    assert summary["run_dir"].endswith("mine-2")


def test_no_traceback_in_a_real_process(tmp_path):
    result = run_script(
        [
            str(REPO / "recipes" / "tinyvgg.py"),
            "--dataset",
            "npz",
            "--data-root",
            str(tmp_path / "missing.npz"),
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error: ") and len(result.stderr.strip().splitlines()) == 1


def test_nproc_per_node_inside_a_torchrun_job_is_refused(monkeypatch, capsys):
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "test")
    line = _fails(["--nproc-per-node", "2"], capsys)
    assert "torchrun" in line and "--nproc-per-node" in line
