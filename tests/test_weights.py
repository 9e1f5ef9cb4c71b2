import json
import pickle

import pytest
import torch

from ignite_cv.models import build_model
from ignite_cv.utils.checksum import tensors_checksum
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


# --- checksums and metadata read from files (issue 19) ---------------------------------------------


def _saved(tmp_path):
    torch.manual_seed(0)
    model = build_model("tinyvgg", 1, (8, 8), 3, hidden_units=4)
    path = tmp_path / "m.safetensors"
    save_model(path, model, _card())
    return path


def test_a_flipped_bit_or_a_truncation_is_refused_naming_the_file(tmp_path):
    path = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    flipped = tmp_path / "flipped.safetensors"
    data[-9] ^= 0x04  # one bit of the last weight
    flipped.write_bytes(bytes(data))
    with pytest.raises(UserError, match=f"{flipped} fails its checksum: the file is damaged"):
        load_model(flipped)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UserError, match="damaged or truncated"):
        load_model(truncated)


def _with_card(tmp_path, edit):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    source = _saved(tmp_path)
    with safe_open(str(source), framework="pt") as handle:
        metadata = dict(handle.metadata())
    metadata["ignite_cv"] = edit(json.loads(metadata["ignite_cv"]))
    tensors = load_file(str(source))
    metadata["crc32"] = tensors_checksum(tensors, metadata["ignite_cv"])  # edited with care: it verifies
    path = tmp_path / "edited.safetensors"
    save_file(tensors, str(path), metadata=metadata)
    return path


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda card: json.dumps([card]), "a JSON list, not an object"),
        (lambda card: json.dumps("tinyvgg"), "a JSON str, not an object"),
        (lambda card: json.dumps({**card, "image_size": [10**6, 10**6]}), "'image_size'"),
        (lambda card: json.dumps({**card, "class_names": "xyz"}), "'class_names'"),
        (lambda card: json.dumps({**card, "in_channels": 7}), "'in_channels'"),
        (lambda card: json.dumps({**card, "num_outputs": 10**9}), "'num_outputs'"),
        (lambda card: json.dumps({k: v for k, v in card.items() if k != "arch_args"}), "'arch_args'"),
    ],
)
def test_metadata_of_the_wrong_type_or_size_is_refused_before_anything_is_built(tmp_path, edit, named):
    path = _with_card(tmp_path, edit)
    with pytest.raises(UserError) as caught:
        read_card(path)
    assert named in str(caught.value) and str(path) in str(caught.value)


def test_a_card_describing_a_far_larger_model_than_the_file_is_refused_unallocated(tmp_path):
    # 4096 px is within bounds, but TinyVGG's classifier would then need 4·1024² weights per class
    path = _with_card(tmp_path, lambda card: json.dumps({**card, "image_size": [4096, 4096]}))
    with pytest.raises(UserError, match="describes a model of 12,583,451 values"):
        load_model(path)


def test_every_checkpoint_stores_a_checksum(tmp_path):
    from safetensors import safe_open

    with safe_open(str(_saved(tmp_path)), framework="pt") as handle:
        assert len(handle.metadata()["crc32"]) == 8


def test_update_card_adds_to_the_card_and_rewrites_only_when_something_changes(tmp_path):
    from ignite_cv.weights import update_card

    model = build_model("tinyvgg", 1, (8, 8), 3, hidden_units=4)
    path = tmp_path / "m.safetensors"
    save_model(path, model, _card())
    update_card(path, threshold=0.3)
    assert read_card(path).extra["threshold"] == 0.3
    written = path.stat().st_mtime_ns, path.stat().st_ino
    assert update_card(path, threshold=0.3).extra["threshold"] == 0.3
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == written  # the same value: no rewrite
    update_card(path, threshold=0.4)
    assert read_card(path).extra["threshold"] == 0.4 and path.stat().st_ino != written[1]
    reloaded = load_model(path)[0].state_dict()
    assert all(torch.equal(reloaded[k], v) for k, v in model.state_dict().items())  # weights unchanged


#: One small instance of every registered architecture: (name, in_channels, image_size, arch_args).
ARCHITECTURES = [
    ("mlp", 1, (8, 8), {}),
    ("tinyvgg", 1, (8, 8), {"hidden_units": 4}),
    ("alexnet_small", 3, (32, 32), {}),
    ("alexnet", 3, (64, 64), {}),
    ("resnet18", 3, (32, 32), {}),
    ("resnet34", 1, (32, 32), {}),
    ("resnet50", 3, (32, 32), {}),
]


def test_the_list_covers_every_registered_architecture():
    from ignite_cv.models import available_models

    assert sorted(name for name, *_ in ARCHITECTURES) == available_models()


@pytest.mark.parametrize(
    ("arch", "channels", "size", "args"), ARCHITECTURES, ids=[a[0] for a in ARCHITECTURES]
)
def test_every_architecture_reloads_with_exactly_its_stored_weights(tmp_path, arch, channels, size, args):
    # load_model allocates the architecture without initializing it (the file's weights fill it):
    # every value must come from the file, none from uninitialized memory
    torch.manual_seed(1)
    model = build_model(arch, channels, size, 3, **args)
    with torch.no_grad():  # BatchNorm statistics away from their initial 0 and 1
        for buffer in model.buffers():
            if buffer.is_floating_point():
                buffer.copy_(torch.rand_like(buffer) + 0.5)
    model.eval()
    path = tmp_path / "m.safetensors"
    save_model(path, model, ModelCard(arch, args, ["a", "b", "c"], channels, list(size), 3, {"kind": "none"}))
    reloaded, _ = load_model(path)
    stored = model.state_dict()
    assert reloaded.state_dict().keys() == stored.keys()
    assert all(torch.equal(v, stored[k]) for k, v in reloaded.state_dict().items())
    assert all(p.requires_grad for p in reloaded.parameters())
    x = torch.rand(2, channels, *size)
    with torch.no_grad():
        assert torch.equal(reloaded(x), model(x))


def test_a_buffer_the_file_does_not_hold_is_the_one_the_model_computes(tmp_path, monkeypatch):
    from torch import nn

    from ignite_cv.models import registry

    class Scaled(nn.Module):
        def __init__(self, in_channels, image_size, num_outputs):
            super().__init__()
            self.fc = nn.Linear(in_channels * image_size[0] * image_size[1], num_outputs)
            self.register_buffer("scale", torch.full((1,), 3.0), persistent=False)

        def forward(self, x):
            return self.fc(x.flatten(1)) * self.scale

    monkeypatch.setitem(registry._REGISTRY, "scaled_test", Scaled)
    model = Scaled(1, (4, 4), 3).eval()
    path = tmp_path / "m.safetensors"
    save_model(path, model, ModelCard("scaled_test", {}, ["a", "b", "c"], 1, [4, 4], 3, {"kind": "none"}))
    reloaded, _ = load_model(path)
    assert torch.equal(reloaded.scale, torch.full((1,), 3.0))
    x = torch.rand(3, 1, 4, 4)
    assert torch.equal(reloaded(x), model(x))
