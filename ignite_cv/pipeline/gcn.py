"""Global contrast normalization (GCN) per image, and ZCA whitening fitted on the training split after it.

GCN (Goodfellow et al. 2013, "Maxout networks"; Deep Learning book §12.2.1.1), per image over all its
pixels and channels::

    X' = s · (X − mean(X)) / max(ε, sqrt(λ + mean((X − mean(X))²)))

With λ = 0 every image comes out with mean 0 and standard deviation s (a constant image comes out as 0:
the ε floor keeps the division finite). It uses each image's own pixels only, so it needs no statistics
from the training split; ZCA whitening does, and is fitted in one streaming float64 pass over it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch
from torch import nn

from ignite_cv.utils.errors import UserError

if TYPE_CHECKING:  # Kornia is imported when ZCA is used (0.25 s of every run otherwise)
    from kornia.enhance import ZCAWhitening

#: Defaults of the --gcn-* flags (Goodfellow et al. 2013 used λ = 0, ε = 1e-8 on CIFAR-10).
DEFAULT_GCN = {"scale": 1.0, "lambda": 0.0, "eps": 1e-8}
#: Largest C·H·W for which a ZCA matrix is fitted (32×32 RGB): its D×D matrix has D² entries.
MAX_ZCA_VALUES = 3072


def check_gcn_params(scale: float, lam: float, eps: float) -> None:
    """Raise a one-line UserError unless s > 0, λ >= 0 and ε > 0 (all finite)."""
    if not (math.isfinite(scale) and scale > 0):
        raise UserError(f"--gcn-scale {scale} must be a positive number", "pass e.g. --gcn-scale 1")
    if not (math.isfinite(lam) and lam >= 0):
        raise UserError(
            f"--gcn-lambda {lam} must be >= 0", "pass --gcn-lambda 0 (Goodfellow et al. 2013) or larger"
        )
    if not (math.isfinite(eps) and eps > 0):
        raise UserError(f"--gcn-eps {eps} must be a positive number", "pass e.g. --gcn-eps 1e-8")


def global_contrast_normalize(x: torch.Tensor, scale: float, lam: float, eps: float) -> torch.Tensor:
    """GCN of a float batch ``(N, ...)``: each sample over all its values, in the input's dtype."""
    flat = x.reshape(x.shape[0], -1)
    centred = flat - flat.mean(dim=1, keepdim=True)
    spread = (centred.square().mean(dim=1, keepdim=True) + lam).sqrt().clamp(min=eps)
    return (centred * (scale / spread)).view_as(x)


class GlobalContrastNormalize(nn.Module):
    """GCN, then (optionally) ZCA whitening with a fitted mean vector ``(D,)`` and matrix ``(D, D)``.

    The ZCA step is Kornia's :class:`~kornia.enhance.ZCAWhitening` loaded with our fit; its tensors are
    buffers, so ``.to(device)`` moves them with the module.
    """

    def __init__(
        self,
        scale: float,
        lam: float,
        eps: float,
        zca_mean: torch.Tensor | None = None,
        zca_transform: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        check_gcn_params(scale, lam, eps)
        self.scale, self.lam, self.eps = float(scale), float(lam), float(eps)
        self.zca: ZCAWhitening | None = None
        if (zca_mean is None) != (zca_transform is None):
            raise ValueError("ZCA needs both its mean vector and its transform matrix")
        if zca_transform is not None:
            dim = zca_transform.shape[0]
            if zca_transform.shape != (dim, dim) or zca_mean.numel() != dim:
                raise ValueError(
                    f"ZCA matrix {tuple(zca_transform.shape)} and mean {tuple(zca_mean.shape)} do not match"
                )
            from kornia.enhance import ZCAWhitening

            zca = ZCAWhitening(dim=0)
            zca.mean_vector = zca_mean.detach().float().reshape(1, dim)
            zca.transform_matrix = zca_transform.detach().float()
            zca.transform_inv = torch.empty(0)
            zca.fitted = True
            self.zca = zca

    def extra_repr(self) -> str:
        zca = "" if self.zca is None else f", zca={self.zca.transform_matrix.shape[0]}"
        return f"scale={self.scale}, lambda={self.lam}, eps={self.eps}{zca}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = global_contrast_normalize(x, self.scale, self.lam, self.eps)
        if self.zca is not None:
            dim = self.zca.transform_matrix.shape[0]
            if out[0].numel() != dim:
                raise ValueError(f"ZCA was fitted on {dim} values per image, got {tuple(x.shape[1:])}")
            out = self.zca(out.reshape(out.shape[0], dim)).view_as(x)
        return out


def fit_zca(
    batches: Iterable[torch.Tensor], scale: float, lam: float, eps: float, zca_eps: float
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Fit ZCA on GCN-normalized training images in one streaming float64 pass.

    ``batches`` yields uint8 ``(N, C, H, W)`` (scaled by 1/255 here, as the pipeline does) or float
    batches already in [0, 1]. Accumulates Σx and Σxxᵀ in float64 on the batches' device, then
    W = U·diag(1/sqrt(σ² + zca_eps))·Uᵀ from the eigendecomposition of the unbiased covariance.
    Returns (mean ``(D,)``, W ``(D, D)``, number of images), float64 on the CPU.
    """
    if not (math.isfinite(zca_eps) and zca_eps > 0):
        raise UserError(f"--zca-eps {zca_eps} must be a positive number", "pass e.g. --zca-eps 0.1")
    total: torch.Tensor | None = None
    outer: torch.Tensor | None = None
    count = 0
    for batch in batches:
        x = batch.to(torch.float64)
        if batch.dtype == torch.uint8:
            x = x / 255.0
        x = global_contrast_normalize(x, scale, lam, eps).reshape(x.shape[0], -1)
        if total is None:
            if x.shape[1] > MAX_ZCA_VALUES:
                raise UserError(
                    f"--zca on images of {x.shape[1]} values (C×H×W) needs a {x.shape[1]}² matrix, "
                    f"more than the {MAX_ZCA_VALUES}² allowed",
                    "use --zca no, or smaller images (at most 32×32 RGB or 55×55 grey)",
                )
            total = torch.zeros(x.shape[1], dtype=torch.float64, device=x.device)
            outer = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64, device=x.device)
        total += x.sum(dim=0)
        outer.addmm_(x.T, x)
        count += x.shape[0]
    if total is None or count < 2:
        raise UserError("--zca needs at least two training images", "use --zca no or a larger training split")
    mean = total / count
    covariance = (outer - count * torch.outer(mean, mean)) / (count - 1)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance.cpu())
    eigenvalues = eigenvalues.clamp(min=0.0)
    transform = (eigenvectors * (eigenvalues + zca_eps).rsqrt()) @ eigenvectors.T
    return mean.cpu(), transform, count
