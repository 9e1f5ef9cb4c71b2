"""Class activation maps (Grad-CAM, Grad-CAM++, Score-CAM) of a batch, computed by torchcam.

Why torchcam and not jacobgil's ``grad-cam`` (both maintained, both have the three methods):

========================  ==========================================  ========================================
                          torchcam 0.5.0                              grad-cam 1.5.7
========================  ==========================================  ========================================
licence                   Apache-2.0                                  MIT
dependencies              torch, numpy, pillow, matplotlib (all ours) + opencv-python-headless, ttach, tqdm
Python                    >= 3.11                                     >= 3.8
train/eval mode           restored per module (``_model_eval``)       ``model.eval()`` in ``__init__``, never
                                                                      restored
hooks                     removed on ``with`` exit                    removed by ``release()``/``with``; left
                                                                      behind they leak (its #117, #132, #195)
gradients                 ``autograd.grad`` w.r.t. the layer's        ``loss.backward()``: zeroes and fills
                          output: parameters' ``.grad`` untouched     every parameter's ``.grad``
where maps are computed   on the model's device (torch)               on the CPU (numpy, OpenCV resize)
Score-CAM                 batched masked forwards, silent             prints a tqdm bar on every call
========================  ==========================================  ========================================

For a library that explains a model in the middle of a training run, on a GPU, the deciding points are
torchcam's dependencies (nothing new: it is a core dependency, a 44 kB wheel) and that it leaves the
parameters' gradients alone; the cost is Python >= 3.11 (``setup.cfg``'s ``python_requires`` was
raised from 3.10; the project's machines run 3.11 and 3.12).

What ignite_cv adds around it:

* **Frozen backbones** (``--mode extract``): with every parameter up to the target layer frozen and an
  input that needs no gradient, the layer's output has no autograd history and torchcam raises "target
  score is not connected". The input is given ``requires_grad`` instead, so gradients flow through the
  frozen layers while no parameter's ``requires_grad`` changes, not even for the duration of the call.
* **Mode and flags**: the model runs in eval mode; :func:`~ignite_cv.explain.state.preserved_state`
  puts every module's mode and every parameter's flag back afterwards, and torchcam's hooks are removed
  on exit of its context manager (also on errors).
* **One logit** (two classes, :mod:`ignite_cv.task`): the class scores ``[0, z]`` give class 0 a
  constant score, whose gradient is zero. The CAM targets are each class's log-odds instead,
  ``[-z, z]`` (class 1: ``z``; class 0: ``-z``); probabilities stay ``[1 - σ(z), σ(z)]``. Several
  logits are explained as they are (the pre-softmax scores the papers use).
* **Grad-CAM++**: torchcam 0.5.0's ``GradCAMpp._get_weights`` does not compute the paper's α (Chattopadhyay
  et al. 2018, eq. 19, α = g² / (2g² + Σ_ab A_ab · g³)): it sums A·g³ over positions instead of
  multiplying ΣA by g³ at each position, and its in-place division acts on a copy (``alpha[idx][mask]``
  is advanced indexing), so α stays g². :class:`_PaperGradCAMpp` overrides only that α; hooks,
  back-propagation, the weighted sum, ReLU and normalization are torchcam's.

Maps are upsampled (bilinear) to the input's resolution and scaled to [0, 1] per image by torchcam (a map
that is zero everywhere stays zero: nothing in the layer supports the class).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ignite_cv.explain.state import preserved_state
from ignite_cv.utils.errors import UserError
from ignite_cv.utils.modules import unwrap

METHODS = ("gradcam", "gradcam++", "scorecam")
#: Masked inputs per forward pass of Score-CAM (one per channel of the target layer and image).
SCORECAM_BATCH = 64


@dataclass
class CamBatch:
    """CAMs of one batch, all on the input's device.

    ``maps``: ``(N, H, W)`` float32 in [0, 1] at the input's resolution; ``probabilities``: ``(N, C)``
    class probabilities; ``predicted``: ``(N,)`` the argmax; ``explained``: ``(N,)`` the class each
    map explains.
    """

    maps: torch.Tensor
    probabilities: torch.Tensor
    predicted: torch.Tensor
    explained: torch.Tensor


def check_method(method: str) -> str:
    if method not in METHODS:
        raise UserError(f"unknown CAM method {method!r}", f"choose one of: {', '.join(METHODS)}")
    return method


class ClassScores(nn.Module):
    """A classifier's logits as one score per class for CAM targets: several logits as they are; one logit
    ``z`` (two classes) as the two classes' log-odds ``[-z, z]``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.one_logit = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(x).float()
        self.one_logit = logits.shape[1] == 1
        return torch.cat([-logits, logits], dim=1) if self.one_logit else logits

    def probabilities(self, scores: torch.Tensor) -> torch.Tensor:
        """Class probabilities from this module's output (``[-z, z]`` → ``[1 - σ(z), σ(z)]``)."""
        if self.one_logit:
            z = scores[:, 1:]
            return torch.cat([torch.zeros_like(z), z], dim=1).softmax(dim=1)
        return scores.softmax(dim=1)


@functools.cache
def _extractors() -> dict[str, Any]:
    """torchcam's extractor classes by method name (imported on first use, so ``import ignite_cv`` stays
    light)."""
    try:
        from torchcam.methods import GradCAM, GradCAMpp, ScoreCAM
    except ImportError:
        raise UserError(
            "class activation maps need torchcam, which is not installed",
            "pip install -e . (torchcam is a dependency of ignite_cv; it needs Python >= 3.11)",
        ) from None

    class _PaperGradCAMpp(GradCAMpp):
        """torchcam's Grad-CAM++ with the paper's α (see the module docstring); the rest is torchcam's."""

        def _get_weights(self, class_idx, scores, eps: float = 1e-8, **kwargs) -> list[torch.Tensor]:
            self._backprop(scores, class_idx, **kwargs)
            weights = []
            for grad, activation in zip(self.hook_g, self.hook_a):
                grad_2 = grad.pow(2)
                spatial = (...,) + (None,) * (activation.ndim - 2)
                denom = 2 * grad_2 + activation.flatten(2).sum(-1)[spatial] * grad_2 * grad
                alpha = torch.where(grad_2 > 0, grad_2 / (denom + eps), torch.zeros_like(grad_2))
                weights.append((alpha * torch.relu(grad)).flatten(2).sum(-1))
            return weights

    return {"gradcam": GradCAM, "gradcam++": _PaperGradCAMpp, "scorecam": ScoreCAM}


def compute_cams(
    model: nn.Module,
    inputs: torch.Tensor,
    target_layer: str,
    method: str = "gradcam",
    classes: torch.Tensor | list[int] | None = None,
    scorecam_batch: int = SCORECAM_BATCH,
) -> CamBatch:
    """CAMs of ``inputs`` (the model's float input, ``(N, C, H, W)`` on its device) at ``target_layer``
    (a module name, see :mod:`ignite_cv.explain.layers`) for ``classes`` (``(N,)`` class indices; None:
    the predicted classes).

    The model (bare or wrapped in DDP/DataParallel/``torch.compile``: its bare module is used) runs in
    eval mode; afterwards its modes, ``requires_grad`` flags and parameters' ``.grad`` are as before and
    no hook is left on it. Safe inside ``torch.no_grad()`` or ``torch.inference_mode()`` blocks.
    """
    check_method(method)
    base = unwrap(model)
    layers = dict(base.named_modules())
    if target_layer not in layers or not target_layer:
        raise UserError(f"{type(base).__name__} has no layer {target_layer!r}", "see --list-layers")
    if inputs.ndim != 4 or len(inputs) == 0:
        raise ValueError(f"inputs must be a non-empty (N, C, H, W) batch, got {tuple(inputs.shape)}")
    extractor_class = _extractors()[method]
    scorer = ClassScores(base)
    scorer.training = False  # not .eval(): that would switch the model's modules before they are recorded
    options = {"batch_size": scorecam_batch} if method == "scorecam" else {}
    with (
        torch.inference_mode(False),
        preserved_state(base),
        extractor_class(scorer, target_layer=layers[target_layer], **options) as extractor,
    ):
        base.eval()
        # A fresh leaf that needs gradients: the target layer's output then has an autograd history even
        # when every parameter before it is frozen (and inference tensors become ordinary ones).
        x = inputs.detach().clone().requires_grad_(method != "scorecam")
        with torch.set_grad_enabled(method != "scorecam"):
            scores = scorer(x)
        probabilities = scorer.probabilities(scores.detach())
        predicted = probabilities.argmax(dim=1)
        explained = predicted if classes is None else torch.as_tensor(classes, device=predicted.device)
        if explained.shape != predicted.shape:
            raise ValueError(f"{len(explained)} classes for {len(predicted)} inputs")
        if len(explained) and not 0 <= int(explained.min()) <= int(explained.max()) < scores.shape[1]:
            raise ValueError(f"classes must lie in 0..{scores.shape[1] - 1}, got {explained.tolist()}")
        with torch.set_grad_enabled(method != "scorecam"):
            cams = extractor(class_idx=explained.tolist(), scores=scores)[0]
        extractor.reset_hooks()
    maps = F.interpolate(
        cams.detach().float().unsqueeze(1), size=inputs.shape[-2:], mode="bilinear", align_corners=False
    )
    return CamBatch(maps.squeeze(1).clamp_(0, 1), probabilities, predicted, explained.to(torch.int64))
