"""tools/compare.py: prints the table and the output folder; a folder that is not a run: one line, exit 2."""

from __future__ import annotations

from pathlib import Path

from tests.recipe_utils import REPO, run_script
from tests.studies.run_factory import recipe_config, write_run

TOOL = REPO / "tools" / "compare.py"


def test_compare_cli_writes_the_table_and_figures(tmp_path):
    a = write_run(tmp_path / "study" / "a", recipe_config(model="resnet18", weights="none"))
    write_run(tmp_path / "study" / "b", recipe_config(model="alexnet_small", weights="none"))
    result = run_script([str(TOOL), str(tmp_path / "study"), "--metric", "f1_macro"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "study" / "compare"
    assert f"output folder: {out}" in result.stdout
    assert "2 runs compared; varied fields: model" in result.stdout
    assert result.stdout.startswith("| run ")
    assert (out / "metrics.csv").read_text().splitlines()[1].startswith("a,resnet18,")
    assert (out / "accuracy_by_weights.png").stat().st_size > 0
    assert a.exists() and sorted(p.name for p in a.iterdir()) == [
        "config.json",
        "metrics.jsonl",
        "report",
        "summary.json",
    ]  # run folders are only read


def test_not_a_run_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "nothing").mkdir()
    for args in ([str(tmp_path / "nothing")], []):  # not a run; no folder at all (argparse)
        result = run_script([str(TOOL), *args], cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        err = result.stderr.strip()
        assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert not Path(tmp_path / "compare").exists()
