import json

import pytest
import torch
from safetensors.torch import save_file

from ignite_cv.errors import UserError
from ignite_cv.training_state import META_KEY, TrainingState, _checksum, read_state, save_state


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
