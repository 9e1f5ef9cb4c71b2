"""The model card for people: from the checkpoint, plus the run's data name and test metrics."""

from __future__ import annotations

import json

from ignite_cv.inference.model_info import run_folder_of
from ignite_cv.inference.predictor import Predictor
from tests.inference.conftest import make_checkpoint


def test_a_checkpoint_in_a_run_folder_shows_the_runs_data_and_test_metrics(tmp_path):
    run = tmp_path / "run"
    checkpoint = make_checkpoint(
        (run / "checkpoints").mkdir(parents=True) or run / "checkpoints" / "best.safetensors"
    )
    (run / "config.json").write_text(
        json.dumps({"dataset": "folder", "data_root": "ants.zip", "center_crop": True})
    )
    (run / "summary.json").write_text(json.dumps({"test": {"loss": 0.3, "accuracy": 0.875, "roc_auc": 0.9}}))
    predictor = Predictor.from_checkpoint(checkpoint, "cpu")
    info = predictor.info()
    assert run_folder_of(checkpoint) == run.resolve()
    assert info.data == "folder (ants.zip)" and info.test_metrics == {"accuracy": 0.875, "roc_auc": 0.9}
    assert predictor.preprocessing.center_crop is True  # the run's config, as the card does not say
    rows = dict(info.rows())
    assert rows["input"] == "RGB 8×8 (centre crop)"
    assert rows["classes"] == "2: cat, dog"
    assert rows["test metrics (run summary)"] == "accuracy 0.8750, roc_auc 0.9000"
    lines = info.markdown().splitlines()
    assert lines[3] == "- **input**: RGB 8×8 (centre crop)"
    assert lines[4] == "- **decision**: dog if P(dog) \\>= 0.5 (default)"  # Markdown-escaped: shows >=


def test_a_loose_checkpoint_has_only_its_card(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "m.safetensors", classes=("a", "b", "c"))
    info = Predictor.from_checkpoint(checkpoint, "cpu").info()
    assert run_folder_of(checkpoint) is None
    assert (
        info.data is None and info.test_metrics == {} and info.decision == "argmax of the class probabilities"
    )
