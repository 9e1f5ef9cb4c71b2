"""The pooled features of a trained network: what its classification head receives.

A model with ``forward_features`` (ResNet, AlexNet) gives those; any other model gives the input of its
last ``nn.Linear`` (caught with a forward pre-hook), which for our models is the flattened, pooled
feature vector the head classifies. Images go through the checkpoint's batch pipeline without
augmentation, as in evaluation, so the features are those of the evaluated model.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch
from torch import nn

from ignite_cv.engine import AMP_DTYPES
from ignite_cv.utils.atomic import atomic_path
from ignite_cv.utils.modules import unwrap


def feature_function(model: nn.Module):
    """``x ↦ (N, D)`` pooled features of ``model`` for normalized input ``x``."""
    model = unwrap(model)
    if hasattr(model, "forward_features"):
        return model.forward_features
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no forward_features and no Linear layer")
    head = linears[-1]

    def features(x: torch.Tensor) -> torch.Tensor:
        caught: list[torch.Tensor] = []
        handle = head.register_forward_pre_hook(lambda _, inputs: caught.append(inputs[0]))
        try:
            model(x)
        finally:
            handle.remove()
        return torch.flatten(caught[-1], 1)

    return features


@torch.inference_mode()
def pooled_features(
    model: nn.Module, pipeline, loader, device: torch.device, amp: str = "none", keep_images: bool = False
):
    """``(features float32 (N, D), labels int64 (N,), uint8 images or None)`` of every batch of
    ``loader``, in its order, on the CPU."""
    model.eval()
    features = feature_function(model)
    dtype = AMP_DTYPES.get(amp)
    autocast = torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
    chunks, labels, kept = [], [], []
    for images, y in loader:
        if keep_images:
            kept.append(images.cpu())
        with autocast:
            out = features(pipeline(images.to(device, non_blocking=True), augment=False))
        chunks.append(out.float().cpu())
        labels.append(y.cpu())
    return torch.cat(chunks), torch.cat(labels), torch.cat(kept) if kept else None


def save_features(
    path: str | Path, features: torch.Tensor, labels: torch.Tensor, metadata: dict[str, str]
) -> None:
    """``{"features", "labels"}`` as a safetensors file (atomic), with string ``metadata``."""
    from safetensors.torch import save_file

    tensors = {"features": features.contiguous(), "labels": labels.contiguous()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
