"""The comparison table: which config fields vary, short distinct names, one row per run, CSV/markdown."""

from __future__ import annotations

import csv
import io

import pytest

from ignite_cv.studies.runs import collect_runs, load_run
from ignite_cv.studies.table import (
    distinguishing_fields,
    group_labels,
    metrics_table,
    mode_label,
    run_labels,
    varied_fields,
    weights_label,
)
from tests.studies.run_factory import recipe_config, write_run


def test_varied_fields_skip_bookkeeping_and_follow_the_study_order():
    base = {"lr": 0.1, "model": "mlp", "output_dir": "a", "run_name": "x", "seed": 0, "weights": "none"}
    configs = [
        base,
        {**base, "lr": 0.01, "output_dir": "b", "run_name": "y"},
        {**base, "model": "tinyvgg", "weights": "w.safetensors", "run_name": "z"},
    ]
    assert varied_fields(configs) == ["model", "weights", "lr"]
    assert varied_fields(configs[:1]) == []  # one run: nothing varies
    assert varied_fields([base, {**base, "run_name": "other"}]) == []
    # a field an older run's config lacks is a difference too
    assert varied_fields([base, {**base, "init": "kaiming"}]) == ["init"]


def test_names_keep_only_fields_that_tell_runs_apart():
    tiny = recipe_config("tinyvgg")
    resnet = recipe_config("resnet_finetune", weights="none")
    tiny_npz = {**tiny, "dataset": "npz", "data_root": "/data/medmnist/pneumoniamnist.npz"}
    configs = [tiny, resnet, tiny_npz]
    fields = varied_fields(configs)
    assert len(fields) > 10  # two recipes differ in many defaults...
    # ...the study's axes that differ, and one more field, tell these runs apart
    assert distinguishing_fields(configs, fields) == ["model", "mode", "dataset"]
    assert distinguishing_fields(configs, fields, within=("model",)) == ["mode", "dataset"]
    assert distinguishing_fields([tiny, {**tiny, "lr": 0.1, "seed": 3}], ["lr", "seed"]) == ["lr"]


def test_group_labels_name_a_shared_baseline_only_where_it_differs():
    tiny = recipe_config("tinyvgg")
    configs = [tiny, {**tiny, "hidden_units": 4}, {**tiny, "dataset": "npz"}]
    fields = varied_fields(configs)
    assert fields == ["dataset", "hidden_units"]
    assert group_labels(configs, fields) == ["", "hidden_units=4", "dataset=npz"]
    # an even grid has no baseline: every label names every field
    grid = [{**tiny, "lr": lr, "epochs": e} for lr in (0.1, 0.01) for e in (2, 4)]
    assert group_labels(grid, ["epochs", "lr"]) == [
        "epochs=2 · lr=0.1",
        "epochs=4 · lr=0.1",
        "epochs=2 · lr=0.01",
        "epochs=4 · lr=0.01",
    ]
    # the study's axes are always named
    assert group_labels([tiny, tiny, {**tiny, "model": "mlp"}], ["model"]) == ["tinyvgg", "tinyvgg", "mlp"]


def test_run_labels_are_short_and_unique(tmp_path):
    a = write_run(tmp_path / "a", recipe_config(model="resnet18", weights="none", unfreeze="1"))
    b = write_run(tmp_path / "b", recipe_config(model="resnet18", weights="none", unfreeze="all"))
    c = write_run(
        tmp_path / "c", recipe_config(model="resnet34", mode="extract", weights="/w/pre.safetensors")
    )
    d = write_run(
        tmp_path / "d", recipe_config(model="resnet34", mode="extract", weights="/w/pre.safetensors")
    )
    runs = collect_runs([a, b, c, d])
    fields = varied_fields([r.config for r in runs])
    assert fields == ["model", "weights", "mode", "unfreeze"]
    assert run_labels(runs, fields) == [
        "resnet18 · random · finetune 1",
        "resnet18 · random · finetune all",
        "resnet34 · pre · extract [c]",  # identical configs: the folder name tells them apart
        "resnet34 · pre · extract [d]",
    ]


@pytest.mark.parametrize(
    ("value", "label"),
    [
        ("none", "random"),
        ("", "random"),
        ("imagenet", "ImageNet"),
        ("/ckpt/best_epoch=3.safetensors", "best_epoch=3"),
    ],
)
def test_weights_label(value, label):
    assert weights_label(value) == label


def test_mode_label():
    assert mode_label({"mode": "finetune", "unfreeze": 2}) == "finetune 2"
    assert mode_label({"mode": "extract", "unfreeze": 2}) == "extract"
    assert mode_label({}) == "scratch"


def test_table_rows_for_runs_with_different_metrics_and_phases(tmp_path):
    binary = write_run(
        tmp_path / "binary",
        recipe_config(model="resnet18", mode="finetune"),
        phases=[("warmup", 1), ("finetune", 2)],
    )
    multi = write_run(
        tmp_path / "multi",
        recipe_config(model="resnet34", mode="scratch"),
        phases=[("train", 2)],
        classes=tuple("abc"),
        metrics=("f1_macro",),  # an older run without ROC-AUC or precision/recall
    )
    unfinished = write_run(tmp_path / "unfinished", recipe_config(model="alexnet_small"), finished=False)
    runs = [load_run(p) for p in (binary, multi, unfinished)]
    table = metrics_table(runs)
    header = table.header
    assert header[:4] == ["run", "model", "mode", "test/accuracy"]
    assert "test/roc_auc" in header and "test/f1_macro" in header
    assert [h for h in header if h.startswith("time_s/")] == [
        "time_s/warmup",
        "time_s/finetune",
        "time_s/train",
    ]
    assert table.column("run") == ["binary", "multi", "unfinished"]
    assert table.column("test/roc_auc") == [runs[0].test_metrics["roc_auc"], None, None]
    assert table.column("time_s/train") == [None, runs[1].phases[0]["wall_time_s"], None]
    assert table.column("train_time_s")[0] == pytest.approx(sum(p["wall_time_s"] for p in runs[0].phases))
    assert table.column("epochs_run") == [3, 2, 3]  # the unfinished run: its history rows
    assert table.column("params_total") == [1000, 1000, None]

    parsed = list(csv.reader(io.StringIO(table.to_csv())))
    assert parsed[0] == header and len(parsed) == 4
    roc = header.index("test/roc_auc")
    assert float(parsed[1][roc]) == runs[0].test_metrics["roc_auc"] and parsed[2][roc] == ""

    markdown = table.to_markdown().splitlines()
    assert len(markdown) == 2 + 3  # header, separator, one line per run
    cells = [c.strip() for c in markdown[3].strip("|").split("|")]
    assert cells[header.index("test/roc_auc")] == "-"
    assert cells[header.index("params_total")] == "1K"


def test_real_runs_table(real_study):
    runs = collect_runs([real_study])
    table = metrics_table(runs)
    assert table.column("model") == ["tinyvgg", "mlp"]
    assert table.column("test/accuracy") == [r.test_metrics["accuracy"] for r in runs]
    assert table.column("best_epoch") == [r.summary["best"]["epoch"] for r in runs]
    assert table.column("params_trainable") == [r.summary["params"]["trainable"] for r in runs]
