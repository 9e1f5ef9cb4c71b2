import pickle

import pytest
import torch

from ignite_cv.models import build_model
from ignite_cv.utils.errors import UserError
from ignite_cv.weights import ModelCard, load_model, read_card, save_model


def _card():
    return ModelCard(
        "tinyvgg",
        {"hidden_units": 4},
        ["x", "y", "z"],
        1,
        [8, 8],
        3,
        {"kind": "meanstd", "mean": [0.5], "std": [0.25]},
    )


def test_weights_file_rebuilds_the_model_alone(tmp_path):
    torch.manual_seed(0)
    model = build_model("tinyvgg", 1, (8, 8), 3, hidden_units=4).eval()
    path = tmp_path / "m.safetensors"
    save_model(path, model, _card())
    reloaded, card = load_model(path)
    assert card == _card()
    x = torch.rand(2, 1, 8, 8)
    assert torch.equal(reloaded(x), model(x))
    assert not list(tmp_path.glob(".*tmp"))  # no temp file left behind


class _Marker:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pickle_is_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps(_Marker(str(marker))))
    with pytest.raises(UserError, match="not a safetensors file"):
        read_card(evil)
    with pytest.raises(UserError):
        load_model(evil)
    assert not marker.exists()


def test_missing_file_and_file_without_metadata(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_card(tmp_path / "none.safetensors")
    from safetensors.torch import save_file

    bare = tmp_path / "bare.safetensors"
    save_file({"w": torch.zeros(2)}, str(bare))
    with pytest.raises(UserError, match="no ignite_cv metadata"):
        read_card(bare)
