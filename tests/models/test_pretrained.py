"""``--weights``: files of the same architecture load; foreign, mismatched or pickled files are refused."""

from __future__ import annotations

import json
import pickle
import urllib.error
from pathlib import Path

import pytest
import safetensors.torch
import torch
import torchvision
from torch import nn

from ignite_cv.models import build_model, pretrained
from ignite_cv.models.pretrained import load_pretrained
from ignite_cv.utils.errors import UserError


def _model(arch: str = "resnet18", channels: int = 3, outputs: int = 10) -> nn.Module:
    size = 64 if arch == "alexnet" else 32
    return build_model(arch, channels, (size, size), outputs)


def _backbone(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items() if not k.startswith("head.")}


def _assert_same_backbone(a: nn.Module, b: nn.Module) -> None:
    sa, sb = _backbone(a), _backbone(b)
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_none() -> None:
    model = _model()
    before = _backbone(model)
    assert "none" in load_pretrained(model, "resnet18", "none", 3)
    assert all(torch.equal(before[k], v) for k, v in _backbone(model).items())


def test_safetensors_and_pth_of_same_arch(tmp_path: Path) -> None:
    torch.manual_seed(1)
    source = _model(outputs=3)  # another head size: the head is replaced anyway
    safetensors.torch.save_file(source.state_dict(), str(tmp_path / "w.safetensors"))
    torch.save({f"module.{k}": v for k, v in source.state_dict().items()}, tmp_path / "w.pth")  # DDP keys
    for name in ("w.safetensors", "w.pth"):
        torch.manual_seed(2)
        model = _model(outputs=10)
        head_before = model.head[-1].weight.clone()
        report = load_pretrained(model, "resnet18", str(tmp_path / name), 3)
        _assert_same_backbone(model, source)
        assert torch.equal(model.head[-1].weight, head_before)
        assert "\n" not in report and "loaded 120/120" in report and "missing: none" in report
        assert "unexpected: none" in report and "2 head tensors" in report


def test_torchvision_state_dicts(tmp_path: Path) -> None:
    torch.manual_seed(3)
    tv = torchvision.models.resnet18(weights=None)
    torch.save({"model": tv.state_dict(), "epoch": 3}, tmp_path / "tv.pt")  # a training checkpoint
    model = _model("resnet18")
    report = load_pretrained(model, "resnet18", str(tmp_path / "tv.pt"), 3)
    assert torch.equal(model.layer4[1].conv2.weight, tv.layer4[1].conv2.weight)
    assert "loaded 120/120" in report and "unexpected: none" in report
    # AlexNet's 1000-way layer is classifier.6; in memory, as its 230 MB file would slow the suite.
    alex_tv = torchvision.models.alexnet(weights=None)
    alex = _model("alexnet")
    report = pretrained.load_backbone_state(alex, alex_tv.state_dict(), "alexnet", 3, "torchvision alexnet")
    assert torch.equal(alex.classifier[4].weight, alex_tv.classifier[4].weight)
    assert torch.equal(alex.features[10].bias, alex_tv.features[10].bias)
    assert "loaded 14/14" in report and "unexpected: none" in report and "2 head tensors" in report


def test_grey_from_rgb(tmp_path: Path) -> None:
    torch.manual_seed(4)
    rgb = _model(channels=3)
    path = tmp_path / "rgb.safetensors"
    safetensors.torch.save_file(rgb.state_dict(), str(path))
    grey = _model(channels=1)
    report = load_pretrained(grey, "resnet18", str(path), 1)
    assert "summed over RGB" in report
    weight = rgb.conv1.weight
    assert torch.allclose(grey.conv1.weight, weight.mean(dim=1, keepdim=True) * 3)
    # The point of the sum: a grey image behaves like the same image copied into R, G and B.
    x = torch.randn(2, 1, 32, 32)
    assert torch.allclose(grey.conv1(x), rgb.conv1(x.expand(-1, 3, -1, -1)), atol=1e-5)
    assert torch.equal(grey.layer1[0].conv1.weight, rgb.layer1[0].conv1.weight)


def test_shape_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "r50.safetensors"
    safetensors.torch.save_file(_model("resnet50").state_dict(), str(path))
    expected = r"layer1\.0\.conv1\.weight has shape \(64, 64, 1, 1\) in the file but \(64, 64, 3, 3\)"
    with pytest.raises(UserError, match=expected):
        load_pretrained(_model("resnet18"), "resnet18", str(path), 3)
    grey = tmp_path / "grey.safetensors"
    safetensors.torch.save_file(_model(channels=1).state_dict(), str(grey))
    with pytest.raises(UserError, match=r"conv1\.weight .*--weights none"):
        load_pretrained(_model(channels=3), "resnet18", str(grey), 3)


def test_foreign_tensors(tmp_path: Path) -> None:
    path = tmp_path / "other.safetensors"
    safetensors.torch.save_file({"encoder.weight": torch.zeros(2, 2)}, str(path))
    with pytest.raises(UserError, match="share no tensor names with resnet18"):
        load_pretrained(_model(), "resnet18", str(path), 3)


def test_checkpoint_of_another_arch(tmp_path: Path) -> None:
    meta = {
        "arch": "alexnet_small",
        "arch_args": {},
        "class_names": [str(i) for i in range(10)],
        "in_channels": 3,
        "image_size": [32, 32],
        "normalization": {},
    }
    metadata = {"ignite_cv": json.dumps(meta)}
    path = tmp_path / "ckpt.safetensors"
    safetensors.torch.save_file(_model("alexnet_small").state_dict(), str(path), metadata=metadata)
    with pytest.raises(UserError, match="checkpoint of alexnet_small, not resnet18.*--model alexnet_small"):
        load_pretrained(_model("resnet18"), "resnet18", str(path), 3)
    # The same checkpoint loads into its own architecture, with model.-prefixed keys too.
    prefixed = tmp_path / "prefixed.safetensors"
    state = {f"model.{k}": v for k, v in _model("alexnet_small").state_dict().items()}
    safetensors.torch.save_file(state, str(prefixed), metadata=metadata)
    report = load_pretrained(_model("alexnet_small", outputs=2), "alexnet_small", str(prefixed), 3)
    assert "ignite_cv checkpoint of alexnet_small, 10 classes" in report and "loaded 14/14" in report


class _Payload:
    """Unpickling this creates ``marker``: what a malicious weights file could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_malicious_pickle_is_never_unpickled(tmp_path: Path) -> None:
    # Control: the payload works when unpickled for real.
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(_Payload(control))).close()
    assert control.exists()

    marker = tmp_path / "pwned"
    files = {
        "raw.pth": pickle.dumps({"conv1.weight": _Payload(marker)}, protocol=2),
        "named.safetensors": pickle.dumps(_Payload(marker), protocol=2),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    torch.save({"conv1.weight": _Payload(marker)}, tmp_path / "zip.pth")  # torch's zip format

    for name in ("raw.pth", "zip.pth"):
        with pytest.raises(UserError, match="not a plain state dict.*re-save it with torch.save"):
            load_pretrained(_model(), "resnet18", str(tmp_path / name), 3)
    with pytest.raises(UserError, match="not a valid .safetensors file"):
        load_pretrained(_model(), "resnet18", str(tmp_path / "named.safetensors"), 3)
    assert not marker.exists()


def test_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "w.pkl").write_bytes(b"\x80\x04N.")
    with pytest.raises(UserError, match="unknown type .pkl"):
        load_pretrained(_model(), "resnet18", str(tmp_path / "w.pkl"), 3)
    with pytest.raises(UserError, match="does not exist"):
        load_pretrained(_model(), "resnet18", str(tmp_path / "absent.pth"), 3)


@pytest.fixture
def empty_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub cache and a network that always fails (never reached for real)."""
    hub = tmp_path / "hub"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("offline (test)")

    monkeypatch.setattr(pretrained, "_download", offline)
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return hub


def test_imagenet_offline(empty_hub: Path) -> None:
    with pytest.raises(UserError) as err:
        load_pretrained(_model(), "resnet18", "imagenet", 3)
    message = str(err.value)
    assert "--weights FILE" in message and "--weights none" in message
    assert str(empty_hub / "checkpoints" / "resnet18-f37072fd.pth") in message and "\n" not in message


def test_imagenet_from_cache(empty_hub: Path) -> None:
    torch.manual_seed(5)
    tv = torchvision.models.resnet18(weights=None)
    (empty_hub / "checkpoints").mkdir(parents=True)
    torch.save(tv.state_dict(), empty_hub / "checkpoints" / "resnet18-f37072fd.pth")
    model = _model(channels=1)
    report = load_pretrained(model, "resnet18", "imagenet", 1)
    assert "ResNet18_Weights.IMAGENET1K_V1" in report and "summed over RGB" in report
    assert torch.equal(model.layer4[1].bn2.running_var, tv.layer4[1].bn2.running_var)


def test_imagenet_unavailable_arch() -> None:
    with pytest.raises(UserError, match="no ImageNet weights for alexnet_small"):
        load_pretrained(_model("alexnet_small"), "alexnet_small", "imagenet", 3)


# --- every architecture declares its head: a checkpoint starts a run with another class count ---


@pytest.mark.parametrize("arch", __import__("ignite_cv.models", fromlist=["x"]).available_models())
def test_every_architectures_checkpoint_starts_a_model_with_another_class_count(tmp_path, arch):
    from ignite_cv.weights import ModelCard, save_model

    size = 64 if arch == "alexnet" else 16 if arch in ("mlp", "tinyvgg") else 32
    torch.manual_seed(0)
    ten = build_model(arch, 1, (size, size), 10)
    card = ModelCard(arch, {}, [str(i) for i in range(10)], 1, [size, size], 10, {"kind": "none"})
    path = tmp_path / "ten.safetensors"
    save_model(path, ten, card)
    two = build_model(arch, 1, (size, size), 1)  # two classes: one logit
    prefixes = two.head_key_prefixes
    resized = [k for k, v in two.state_dict().items() if v.shape != ten.state_dict()[k].shape]
    assert resized and all(k.startswith(prefixes) for k in resized), (arch, resized, prefixes)
    head_before = {k: v.clone() for k, v in two.state_dict().items() if k.startswith(prefixes)}
    report = load_pretrained(two, arch, str(path), 1)
    assert "head replaced" in report and "missing: none" in report
    for key, value in two.state_dict().items():
        expected = head_before[key] if key.startswith(prefixes) else ten.state_dict()[key]
        assert torch.equal(value, expected), (arch, key)


def test_weights_with_nan_are_refused(tmp_path):
    source = _model(outputs=3)
    tensors = {
        k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
        for k, v in source.state_dict().items()
    }
    safetensors.torch.save_file(tensors, str(tmp_path / "nan.safetensors"))
    with pytest.raises(UserError, match="hold NaN or infinite values"):
        load_pretrained(_model(), "resnet18", str(tmp_path / "nan.safetensors"), 3)


def test_a_damaged_ignite_cv_checkpoint_is_refused(tmp_path):
    from ignite_cv.weights import ModelCard, save_model

    model = build_model("tinyvgg", 1, (8, 8), 10, hidden_units=4)
    path = tmp_path / "ckpt.safetensors"
    save_model(path, model, ModelCard("tinyvgg", {"hidden_units": 4}, list("abcdefghij"), 1, [8, 8], 10, {}))
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match="fails its checksum"):
        load_pretrained(build_model("tinyvgg", 1, (8, 8), 1, hidden_units=4), "tinyvgg", str(path), 1)
