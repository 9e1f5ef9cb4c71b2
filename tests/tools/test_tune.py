"""tools/tune.py at the command line: bad input is one line and exit 2, before any folder or trial."""

from __future__ import annotations

import textwrap

import pytest

from ignite_cv.tuning.storage import open_storage, open_study
from tests.recipe_utils import REPO, load_tool, run_script

TINY = ["--epochs", "1", "--hidden-units", "4", "--workers", "0", "--image-grid-every", "0"]


@pytest.fixture(scope="module")
def tune():
    return load_tool("tune")


def fails(tune, capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as stop:
        tune.main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    return err.strip()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--space", "lrr=log(1e-5,1e-1)"],
            "--space 'lrr=log(1e-5,1e-1)': the config has no field 'lrr'; did you mean 'lr'?",
        ),
        (
            ["--space", "batch_size=uniform(16.5,64)"],
            "'batch_size' is an int field, bound 16.5 is not a whole number",
        ),
        (["--space", "lr=log(a,b)"], "bounds of 'lr' must be numbers, got 'a'"),
        ([], "no --space given: nothing to search"),
        (["--space", "lr=log(1e-4,1e-2)", "--run-name", "x"], "--run-name cannot be given to tools/tune.py"),
        (["--space", "lr=log(1e-4,1e-2)", "--pruner", "asha"], "argument --pruner: invalid choice: 'asha'"),
        (["--space", "lr=log(1e-4,1e-2)", "--metric", "acc"], "--metric 'acc' is not a validation metric"),
    ],
)
def test_bad_flags_stop_before_any_folder(tune, capsys, tmp_path, argv, message):
    err = fails(tune, capsys, ["tinyvgg", *argv, *TINY, "--output-dir", str(tmp_path / "runs")])
    assert message in err
    assert not (tmp_path / "runs").exists()


def test_an_unreachable_storage_is_one_line_and_leaves_no_folder(tune, capsys, tmp_path):
    argv = ["tinyvgg", "--space", "lr=log(1e-4,1e-2)", *TINY, "--output-dir", str(tmp_path / "runs")]
    err = fails(tune, capsys, [*argv, "--storage", "sqlite:////no/such/folder/study.db"])
    assert err.startswith("error: cannot open --storage sqlite:////no/such/folder/study.db (unable to open")
    assert not (tmp_path / "runs" / "tinyvgg-tune").exists()
    err = fails(tune, capsys, [*argv, "--storage", "postgresql://me:pw@localhost/db"])
    assert "postgresql://me:***@localhost/db" in err and "pw" not in err.replace("psycopg", "")


def test_a_study_with_another_direction_is_refused(tune, capsys, tmp_path):
    folder = tmp_path / "runs" / "mine"
    folder.mkdir(parents=True)
    open_study(open_storage(f"sqlite:///{folder / 'study.db'}", 10, 30), "mine", "maximize", "loss")
    argv = ["tinyvgg", "--space", "lr=log(1e-4,1e-2)", "--metric", "loss", "--study-name", "mine", *TINY]
    err = fails(tune, capsys, [*argv, "--output-dir", str(tmp_path / "runs")])
    assert err == (
        "error: study 'mine' already exists in the storage and its direction is maximize, not minimize; "
        "pass --direction maximize to continue it, or another --study-name for a new study"
    )
    assert sorted(p.name for p in folder.iterdir()) == ["study.db"]


def test_recipe_errors_and_help(tune, capsys, tmp_path):
    assert "no recipe named 'nope'" in fails(tune, capsys, ["nope", "--space", "lr=log(1e-4,1e-2)"])
    assert "the recipe comes first" in fails(tune, capsys, ["--trials", "3"])
    assert tune.main(["--help"]) is None
    out = capsys.readouterr().out
    assert "--space SPEC" in out and "--pruner {median,hyperband,none}" in out and "--hidden-units" not in out
    with pytest.raises(SystemExit) as stop:
        tune.main(["recipes/tinyvgg.py", "--help"])
    assert stop.value.code == 0 and "--hidden-units" in capsys.readouterr().out


def test_without_optuna_it_says_how_to_install(tmp_path):
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(
        textwrap.dedent(
            """
            import sys

            class _NoOptuna:
                def find_spec(self, name, path=None, target=None):
                    if name.split(".")[0] in ("optuna", "optuna_integration"):
                        raise ModuleNotFoundError(f"No module named {name!r}")

            sys.meta_path.insert(0, _NoOptuna())
            """
        )
    )
    result = run_script(
        [str(REPO / "tools" / "tune.py"), "tinyvgg", "--space", "lr=log(1e-4,1e-2)"],
        cwd=tmp_path,
        env={"PYTHONPATH": f"{shim}:{REPO}"},
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        "error: tools/tune.py needs optuna and optuna_integration; install it: pip install -e '.[tune]' "
        "(or: pip install optuna optuna-integration)\n"
    )
