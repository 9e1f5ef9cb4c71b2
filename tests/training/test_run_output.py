"""What a run writes: rank 0 owns the run folder; every other process holds a stand-in that writes nothing."""

from __future__ import annotations

import json

import torch

from ignite_cv.config import TrainConfig
from ignite_cv.data.splits import DataBundle, Split
from ignite_cv.training.loop import Timeline
from ignite_cv.training.run_output import RunOutput
from ignite_cv.weights import ModelCard


def _bundle(skipped=()) -> DataBundle:
    split = Split(labels=torch.tensor([0, 1]), images=torch.zeros(2, 1, 2, 2, dtype=torch.uint8))
    return DataBundle("tiny", split, split, split, ["a", "b"], 1, (2, 2), skipped=list(skipped))


def _card() -> ModelCard:
    return ModelCard("mlp", {}, ["a", "b"], 1, [2, 2], 1, {"kind": "none"})


def test_a_new_run_writes_its_config_and_skipped_files(tmp_path):
    config = TrainConfig(output_dir=str(tmp_path), run_name="r")
    output = RunOutput.open(config)
    output.start(config, _bundle(["bad.png: truncated"]), Timeline(), resumed_epochs=None)
    output.close()
    assert json.loads((tmp_path / "r" / "config.json").read_text()) == config.to_dict()
    assert (tmp_path / "r" / "data_skipped.txt").read_text() == "bad.png: truncated\n"
    assert output.history is not None and output.board is not None
    output.board.close()


def test_a_stand_in_writes_nothing_anywhere(tmp_path):
    output = RunOutput(None)
    config = TrainConfig(output_dir=str(tmp_path))
    output.start(config, _bundle(), Timeline(), resumed_epochs=None)
    saver = output.saver(_card(), lambda: 1)
    saver({"model": torch.zeros(1)}, "best.safetensors")
    assert output.write_report(torch.tensor([0]), torch.tensor([[1.0, 0.0]]), ["a", "b"], None, 1) is None
    output.finish({"test": {}}, 1)
    output.close()
    assert (output.writes, output.path, output.history, output.board) == (False, None, None, None)
    assert list(tmp_path.iterdir()) == []
