import json

import pytest
import torch
from safetensors.torch import save_file

from ignite_cv.phases import make_optimizer
from ignite_cv.training_state import (
    META_KEY,
    TrainingState,
    _checksum,
    optimizer_from_state,
    optimizer_to_state,
    read_state,
    save_state,
)
from ignite_cv.utils.errors import UserError


def _state() -> TrainingState:
    g = torch.Generator().manual_seed(0)
    return TrainingState({"model.w": torch.randn(64, 64, generator=g), "step": torch.tensor(3)}, {"epoch": 2})


def test_a_flipped_byte_in_the_tensors_fails_the_checksum(tmp_path):
    path = save_state(tmp_path, 7, _state(), keep=1)
    assert read_state(path).meta == {"epoch": 2}
    raw = bytearray(path.read_bytes())
    raw[-100] ^= 0x01  # inside the tensor data, past the header
    path.write_bytes(bytes(raw))
    with pytest.raises(UserError, match="fails its checksum"):
        read_state(path)


def test_states_written_with_the_earlier_blake2b_checksum_still_verify(tmp_path):
    state = _state()
    meta_json = json.dumps(state.meta, sort_keys=True)
    path = tmp_path / "state_iter=000000007.safetensors"
    metadata = {META_KEY: meta_json, "blake2b": _checksum(state.tensors, meta_json, "blake2b")}
    save_file(state.tensors, str(path), metadata=metadata)
    assert torch.equal(read_state(path).tensors["model.w"], state.tensors["model.w"])
    save_file(state.tensors, str(path), metadata={**metadata, "blake2b": "0" * 32})
    with pytest.raises(UserError, match="fails its checksum"):
        read_state(path)


def _channels_last_convnet() -> torch.nn.Module:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(288, 5)
    )
    return net.to(memory_format=torch.channels_last)


@pytest.mark.parametrize("name", ["adamw", "sgd"])
def test_a_restored_optimizer_continues_exactly_on_a_channels_last_model(tmp_path, name):
    """The fused kernels pair buffers and weights by memory position: restored buffers (stored
    contiguous) must take the channels_last layout of their weights, or the wrong weights move."""
    torch.manual_seed(1)
    batches = [(torch.randn(4, 3, 8, 8), torch.randint(0, 5, (4,))) for _ in range(6)]

    def train(model, optimizer, part):
        for x, y in part:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x.to(memory_format=torch.channels_last)), y).backward()
            optimizer.step()

    model = _channels_last_convnet()
    optimizer = make_optimizer(name, model.parameters(), 1e-2, 0.05, 0.9)
    train(model, optimizer, batches[:3])
    tensors, meta = optimizer_to_state(optimizer, "optim")
    path = save_state(
        tmp_path, 3, TrainingState({**tensors, "model": torch.zeros(1)}, {"optimizer": meta}), 1
    )
    resumed_model = _channels_last_convnet()
    resumed_model.load_state_dict(model.state_dict())
    resumed = make_optimizer(name, resumed_model.parameters(), 1e-2, 0.05, 0.9)
    state = read_state(path)
    optimizer_from_state(resumed, state.tensors, state.meta["optimizer"], "optim")
    train(model, optimizer, batches[3:])
    train(resumed_model, resumed, batches[3:])
    for a, b in zip(model.parameters(), resumed_model.parameters()):
        assert torch.equal(a, b)
