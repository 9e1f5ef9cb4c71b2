import torch

from ignite_cv.utils.checksum import CHECKSUM_KEY, tensors_checksum, verify_checksum


def test_any_changed_byte_name_shape_or_text_changes_the_checksum():
    tensors = {"a": torch.arange(6, dtype=torch.float32), "b": torch.ones(2, 2)}
    base = tensors_checksum(tensors, "card")
    flipped = dict(tensors, a=tensors["a"].clone())
    flipped["a"].view(torch.int32)[3] ^= 1  # one bit of one weight
    assert tensors_checksum(flipped, "card") != base
    assert tensors_checksum({"c": tensors["a"], "b": tensors["b"]}, "card") != base
    assert tensors_checksum(dict(tensors, b=torch.ones(4)), "card") != base
    assert tensors_checksum(tensors, "card!") != base
    assert tensors_checksum(dict(reversed(list(tensors.items()))), "card") == base  # order-free


def test_verify_says_match_mismatch_or_absent():
    tensors = {"w": torch.zeros(3)}
    metadata = {CHECKSUM_KEY: tensors_checksum(tensors, "x")}
    assert verify_checksum(tensors, "x", metadata) is True
    assert verify_checksum({"w": torch.ones(3)}, "x", metadata) is False
    assert verify_checksum(tensors, "x", {}) is None
