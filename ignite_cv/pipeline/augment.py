"""On-device augmentation presets whose random parameters are drawn on the input's device.

Kornia's augmentation modules draw their parameters on the CPU from the global generator whatever
the input's device (see docs/field notes), which costs a host round trip per op and ties the
augmentation stream to every other use of the global seed. Here each op draws its per-image
parameters with ``torch.rand(..., generator=g, device=x.device)`` from a generator owned by the
module and seeded from ``--seed``, and then applies them to the whole batch at once:

* geometry (random resized crop, horizontal flip, random affine) is one resampling per batch: crop and
  flip alone are one batched bilinear crop-and-resize (torchvision's ``roi_align``; exact for flips and
  full-size crops); with the affine, crop ∘ flip ∘ affine
  is composed into one 2×3 matrix per image and sampled once with ``grid_sample`` (what the affine
  brings in from outside the image is mirrored, which for crops alone equals clamping at the border);
* colour jiggle (brightness, contrast, saturation, hue) is affine in RGB, so the four ops compose into
  one 3×3 matrix and offset per image and one batched matrix product (hue is a rotation about the grey
  axis in YIQ space, an approximation of the HSV hue shift that costs no colour-space conversion);
  values are clamped to [0, 1] once at the end rather than after each op;
* random erasing fills a per-image box with uniform noise, by masking.

Nothing synchronises with the host, so on a GPU the whole augmentation is queued asynchronously.
Measure with :func:`audit_random_ops`: every random op records its device and whether it used an
explicit generator.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from ignite_cv.utils.errors import UserError

#: Which operations each ``--augment`` preset runs, in this order.
PRESET_OPS: dict[str, tuple[str, ...]] = {
    "none": (),
    "flip": ("flip",),
    "standard": ("crop", "flip", "jiggle"),
    "strong": ("crop", "flip", "affine", "jiggle", "erase"),
}

#: ITU-R 601 luma weights, used for the grey level of RGB images (as torchvision and PIL do).
_LUMA = (0.299, 0.587, 0.114)
#: RGB → YIQ; hue rotation turns the (I, Q) plane about the luma axis.
_RGB_TO_YIQ = ((0.299, 0.587, 0.114), (0.595716, -0.274453, -0.321263), (0.211456, -0.522591, 0.311135))
#: Aspect ratios of random-erasing boxes (Zhong et al. 2017 use [0.3, 1/0.3]).
_ERASE_RATIO = (0.3, 1 / 0.3)


@dataclass(frozen=True)
class AugmentSettings:
    """The validated magnitudes of one preset. Fractions of the image, factors, degrees."""

    ops: tuple[str, ...]
    channels: int
    flip_p: float
    crop_p: float
    crop_scale: tuple[float, float]
    crop_ratio: tuple[float, float]
    jiggle_p: float
    jiggle: float
    hue: float
    affine_p: float
    degrees: float
    translate: float
    scale: float
    shear: float
    erase_p: float
    erase_scale: tuple[float, float]


def augment_settings(options: Any, channels: int) -> AugmentSettings:
    """Validate the ``aug_*`` options of ``options`` (a PipelineOptions or TrainConfig) for ``channels``."""
    preset = options.augment
    if preset not in PRESET_OPS:
        raise UserError(f"unknown --augment {preset!r}", f"choose one of: {', '.join(PRESET_OPS)}")
    if channels < 1:
        raise UserError(
            f"images with {channels} channels cannot be augmented", "use 1 (grey) or 3 (RGB) channels"
        )

    def prob(name: str) -> float:
        value = float(getattr(options, name))
        if not 0.0 <= value <= 1.0:
            raise UserError(f"--{_flag(name)} {value} is not a probability", "use a value in [0, 1]")
        return value

    def within(name: str, lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> float:
        value = float(getattr(options, name))
        bad = (
            (value <= lo if lo_open else value < lo)
            or (value >= hi if hi_open else value > hi)
            or value != value
        )
        if bad:
            interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
            raise UserError(f"--{_flag(name)} {value} is out of range", f"use a value in {interval}")
        return value

    def ordered(
        lo_name: str, hi_name: str, lo: float, hi: float, hi_open: bool = False
    ) -> tuple[float, float]:
        a = within(lo_name, lo, hi, lo_open=True, hi_open=hi_open)
        b = within(hi_name, lo, hi, lo_open=True, hi_open=hi_open)
        if a > b:
            raise UserError(
                f"--{_flag(lo_name)} {a} is larger than --{_flag(hi_name)} {b}",
                "swap them or make them equal",
            )
        return a, b

    return AugmentSettings(
        ops=PRESET_OPS[preset],
        channels=channels,
        flip_p=prob("aug_flip_p"),
        crop_p=prob("aug_crop_p"),
        crop_scale=ordered("aug_crop_scale_min", "aug_crop_scale_max", 0.0, 1.0),
        crop_ratio=ordered("aug_crop_ratio_min", "aug_crop_ratio_max", 0.0, 100.0),
        jiggle_p=prob("aug_jiggle_p"),
        jiggle=within("aug_jiggle", 0.0, 1.0),
        hue=within("aug_hue", 0.0, 0.5),
        affine_p=prob("aug_affine_p"),
        degrees=within("aug_affine_degrees", 0.0, 180.0),
        translate=within("aug_affine_translate", 0.0, 1.0),
        scale=within("aug_affine_scale", 0.0, 1.0, hi_open=True),
        shear=within("aug_affine_shear", 0.0, 60.0),
        erase_p=prob("aug_erase_p"),
        erase_scale=ordered("aug_erase_scale_min", "aug_erase_scale_max", 0.0, 1.0, hi_open=True),
    )


def _flag(name: str) -> str:
    return name.replace("_", "-")


def build_augmentation(options: Any, channels: int, image_size: tuple[int, int]) -> nn.Module | None:
    """The ``--augment`` preset as a module, or None for 'none'.

    The module maps float ``(N, C, H, W)`` in [0, 1] on any device to the same shape and draws its random
    parameters on that device from its own generator, seeded from ``options.seed`` (0 when absent).
    ``image_size`` (height, width) is checked here so a too-small image fails before training starts.
    """
    settings = augment_settings(options, channels)
    if not settings.ops:
        return None
    height, width = image_size
    resamples = any(op in settings.ops for op in ("crop", "affine", "erase"))
    if resamples and min(height, width) < 2:
        raise UserError(
            f"--augment {options.augment} needs images of at least 2×2 pixels, got {height}×{width}",
            "use --augment flip or none",
        )
    return DeviceAugmentation(settings, seed=int(getattr(options, "seed", 0)))


def derive_seed(seed: int, purpose: str = "augment") -> int:
    """A 63-bit seed for ``purpose`` from the run's ``seed``, so the augmentation stream is not the same
    sequence as other generators seeded with the bare ``seed`` (weight init, data order)."""
    digest = hashlib.sha256(f"ignite_cv.{purpose}:{int(seed)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


class DeviceAugmentation(nn.Module):
    """Random augmentation of float images in [0, 1], parameters drawn on the input's device.

    It augments whenever it is called (``BatchPipeline`` decides when). One generator per device,
    created on first use and seeded with ``derive_seed(seed)``: the same seed gives the same outputs for
    the same sequence of batches on the same device. Distributed ranks call ``reseed(seed + rank)``.
    """

    def __init__(self, settings: AugmentSettings, seed: int = 0) -> None:
        super().__init__()
        self.settings = settings
        self.seed = int(seed)
        self._generators: dict[str, torch.Generator] = {}

    def extra_repr(self) -> str:
        return f"ops={'+'.join(self.settings.ops)}, channels={self.settings.channels}, seed={self.seed}"

    def reseed(self, seed: int) -> None:
        """Restart the random stream from ``seed`` on every device."""
        self.seed = int(seed)
        self._generators.clear()

    def generator(self, device: torch.device) -> torch.Generator:
        key = str(device)
        gen = self._generators.get(key)
        if gen is None:
            gen = torch.Generator(device=device)
            gen.manual_seed(derive_seed(self.seed))
            self._generators[key] = gen
        return gen

    def get_rng_state(self) -> dict[str, torch.Tensor]:
        """The generators' states by device: save them with a checkpoint so a resumed run continues."""
        return {key: gen.get_state() for key, gen in self._generators.items()}

    def set_rng_state(self, states: dict[str, torch.Tensor]) -> None:
        for key, state in states.items():
            self.generator(torch.device(key)).set_state(state)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != self.settings.channels:
            raise ValueError(
                f"expected (N, {self.settings.channels}, H, W) images, got {tuple(images.shape)}"
            )
        if not images.is_floating_point():
            raise TypeError(f"augmentation takes float images in [0, 1], got {images.dtype}")
        gen = self.generator(images.device)
        ops = self.settings.ops
        x = images
        if "crop" in ops or "affine" in ops:
            x = self._geometry(x, gen)
        elif "flip" in ops:
            flip = _bernoulli(x.shape[0], self.settings.flip_p, gen, x.device)
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
        if "jiggle" in ops:
            x = self._jiggle(x, gen)
        if "erase" in ops:
            x = self._erase(x, gen)
        return x

    # -- geometry -------------------------------------------------------------------------------------------

    def _crop_boxes(self, n: int, height: int, width: int, gen: torch.Generator, device: torch.device):
        """Per-image crop (x0, y0, w, h) in pixels, continuous; full image where the crop is not drawn."""
        s = self.settings
        area = _uniform(n, *s.crop_scale, gen, device) * (height * width)
        log_ratio = _uniform(n, math.log(s.crop_ratio[0]), math.log(s.crop_ratio[1]), gen, device)
        ratio = log_ratio.exp()
        w = (area * ratio).sqrt().clamp(max=width)
        h = (area / ratio).sqrt().clamp(max=height)
        x0 = _uniform(n, 0.0, 1.0, gen, device) * (width - w)
        y0 = _uniform(n, 0.0, 1.0, gen, device) * (height - h)
        use = _bernoulli(n, s.crop_p, gen, device)
        full_w = torch.full_like(w, float(width))
        full_h = torch.full_like(h, float(height))
        zero = torch.zeros_like(x0)
        return (
            torch.where(use, x0, zero),
            torch.where(use, y0, zero),
            torch.where(use, w, full_w),
            torch.where(use, h, full_h),
        )

    def _geometry(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n, _, height, width = x.shape
        device = x.device
        ops = self.settings.ops
        if "crop" in ops:
            x0, y0, w, h = self._crop_boxes(n, height, width, gen, device)
        else:
            x0 = y0 = torch.zeros(n, device=device)
            w = torch.full((n,), float(width), device=device)
            h = torch.full((n,), float(height), device=device)
        flip = _bernoulli(n, self.settings.flip_p if "flip" in ops else 0.0, gen, device)
        if "affine" not in ops:
            return _crop_resize(x, x0, y0, w, h, flip)
        inverse = self._affine_inverse(n, height, width, gen, device)
        # Output pixel (centred coordinates) → affine⁻¹ → flip → crop → source pixel (centred coordinates).
        crop = _eye3(n, device)
        crop[:, 0, 0] = w / width
        crop[:, 1, 1] = h / height
        crop[:, 0, 2] = x0 + w / 2 - width / 2
        crop[:, 1, 2] = y0 + h / 2 - height / 2
        mirror = _eye3(n, device)
        mirror[:, 0, 0] = 1.0 - 2.0 * flip.float()
        mapping = crop @ mirror @ inverse
        # grid_sample wants the same map in normalised coordinates (align_corners=False: x_n = 2·x_c / W).
        # That is diag(2/W, 2/H, 1) · mapping · diag(W/2, H/2, 1), written out to stay clear of host copies.
        theta = mapping[:, :2].clone()
        theta[:, 0, 1] *= height / width
        theta[:, 1, 0] *= width / height
        theta[:, 0, 2] *= 2.0 / width
        theta[:, 1, 2] *= 2.0 / height
        theta = theta.to(x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    def _affine_inverse(self, n: int, height: int, width: int, gen: torch.Generator, device: torch.device):
        """Per-image inverse of translate · rotate · shear · zoom about the centre, as (n, 3, 3)."""
        s = self.settings
        angle = _uniform(n, -s.degrees, s.degrees, gen, device).deg2rad()
        shear = _uniform(n, -s.shear, s.shear, gen, device).deg2rad()
        zoom = _uniform(n, 1.0 - s.scale, 1.0 + s.scale, gen, device)
        tx = _uniform(n, -s.translate, s.translate, gen, device) * width
        ty = _uniform(n, -s.translate, s.translate, gen, device) * height
        use = _bernoulli(n, s.affine_p, gen, device)
        angle = torch.where(use, angle, torch.zeros_like(angle))
        shear = torch.where(use, shear, torch.zeros_like(shear))
        zoom = torch.where(use, zoom, torch.ones_like(zoom))
        tx = torch.where(use, tx, torch.zeros_like(tx))
        ty = torch.where(use, ty, torch.zeros_like(ty))
        cos, sin, tan = angle.cos(), angle.sin(), shear.tan()
        # Forward linear part: R(angle) · [[1, tan], [0, 1]] · zoom.
        a, b = cos * zoom, (cos * tan - sin) * zoom
        c, d = sin * zoom, (sin * tan + cos) * zoom
        det = a * d - b * c  # = zoom², never 0
        inv = _eye3(n, device)
        inv[:, 0, 0], inv[:, 0, 1] = d / det, -b / det
        inv[:, 1, 0], inv[:, 1, 1] = -c / det, a / det
        inv[:, 0, 2] = -(inv[:, 0, 0] * tx + inv[:, 0, 1] * ty)
        inv[:, 1, 2] = -(inv[:, 1, 0] * tx + inv[:, 1, 1] * ty)
        return inv

    # -- colour ---------------------------------------------------------------------------------------------

    def _jiggle(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        s = self.settings
        n, channels = x.shape[:2]
        device = x.device
        use = _bernoulli(n, s.jiggle_p, gen, device)
        one = torch.ones(n, device=device)
        brightness = torch.where(use, _uniform(n, 1 - s.jiggle, 1 + s.jiggle, gen, device), one)
        contrast = torch.where(use, _uniform(n, 1 - s.jiggle, 1 + s.jiggle, gen, device), one)
        saturation = torch.where(use, _uniform(n, 1 - s.jiggle, 1 + s.jiggle, gen, device), one)
        hue = torch.where(use, _uniform(n, -s.hue, s.hue, gen, device), torch.zeros(n, device=device))
        channel_mean = x.mean(dim=(2, 3), dtype=torch.float32)  # (n, C), of the input image
        if channels != 3:
            # Brightness then contrast about the image's mean level: y = c·b·x + (1 - c)·b·mean(x).
            gain = (contrast * brightness).view(n, 1, 1, 1)
            offset = ((1 - contrast) * brightness * channel_mean.mean(dim=1)).view(n, 1, 1, 1)
            return (x * gain.to(x.dtype) + offset.to(x.dtype)).clamp_(0.0, 1.0)
        luma = _constant("luma", device)
        eye = torch.eye(3, device=device).expand(n, 3, 3)
        # brightness: y = b·x
        matrix = eye * brightness.view(n, 1, 1)
        # contrast: y = c·y + (1 - c)·grey_mean(y); grey_mean is linear, so take it of b·mean(x)
        grey_mean = (channel_mean * brightness.view(n, 1)) @ luma
        matrix = matrix * contrast.view(n, 1, 1)
        offset = ((1 - contrast) * grey_mean).view(n, 1).expand(n, 3)
        # saturation: y = s·y + (1 - s)·grey(y), grey(y) = lumaᵀ y replicated on the three channels
        sat = eye * saturation.view(n, 1, 1) + (1 - saturation).view(n, 1, 1) * luma.view(1, 1, 3)
        matrix, offset = sat @ matrix, (sat @ offset.unsqueeze(-1)).squeeze(-1)
        # hue: rotate the chroma plane of YIQ by 2π·hue
        theta = hue * (2 * math.pi)
        rot = torch.zeros(n, 3, 3, device=device)
        rot[:, 0, 0] = 1.0
        rot[:, 1, 1], rot[:, 1, 2] = theta.cos(), -theta.sin()
        rot[:, 2, 1], rot[:, 2, 2] = theta.sin(), theta.cos()
        turn = _constant("yiq_to_rgb", device) @ rot @ _constant("rgb_to_yiq", device)
        matrix, offset = turn @ matrix, (turn @ offset.unsqueeze(-1)).squeeze(-1)
        flat = x.reshape(n, 3, -1)
        out = torch.baddbmm(offset.to(x.dtype).unsqueeze(-1), matrix.to(x.dtype), flat)
        return out.view_as(x).clamp_(0.0, 1.0)

    # -- erasing --------------------------------------------------------------------------------------------

    def _erase(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        s = self.settings
        n, _, height, width = x.shape
        device = x.device
        area = _uniform(n, *s.erase_scale, gen, device) * (height * width)
        ratio = _uniform(n, math.log(_ERASE_RATIO[0]), math.log(_ERASE_RATIO[1]), gen, device).exp()
        h = (area * ratio).sqrt().round().clamp(1, height)
        w = (area / ratio).sqrt().round().clamp(1, width)
        y0 = (_uniform(n, 0.0, 1.0, gen, device) * (height - h + 1)).floor()
        x0 = (_uniform(n, 0.0, 1.0, gen, device) * (width - w + 1)).floor()
        use = _bernoulli(n, s.erase_p, gen, device)
        rows = torch.arange(height, device=device).view(1, height, 1)
        cols = torch.arange(width, device=device).view(1, 1, width)
        inside = (
            (rows >= y0.view(n, 1, 1))
            & (rows < (y0 + h).view(n, 1, 1))
            & (cols >= x0.view(n, 1, 1))
            & (cols < (x0 + w).view(n, 1, 1))
            & use.view(n, 1, 1)
        )
        noise = torch.rand(x.shape, generator=gen, device=device, dtype=x.dtype)
        return torch.where(inside.unsqueeze(1), noise, x)


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device) * (hi - lo) + lo


def _bernoulli(n: int, p: float, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """n booleans, each True with probability p; always draws n numbers, whatever p is."""
    return torch.rand(n, generator=gen, device=device) < p


_CONSTANTS: dict[tuple[str, str], torch.Tensor] = {}


def _constant(name: str, device: torch.device) -> torch.Tensor:
    """Colour constants, copied to each device once (a fresh host→device copy per batch would synchronise)."""
    key = (name, str(device))
    value = _CONSTANTS.get(key)
    if value is None:
        rgb_to_yiq = torch.tensor(_RGB_TO_YIQ, dtype=torch.float64)
        table = {
            "luma": torch.tensor(_LUMA, dtype=torch.float64),
            "rgb_to_yiq": rgb_to_yiq,
            "yiq_to_rgb": torch.linalg.inv(rgb_to_yiq),
        }
        value = table[name].to(device=device, dtype=torch.float32)
        _CONSTANTS[key] = value
    return value


def _eye3(n: int, device: torch.device) -> torch.Tensor:
    return torch.eye(3, device=device).repeat(n, 1, 1)


def _crop_resize(
    x: torch.Tensor, x0: torch.Tensor, y0: torch.Tensor, w: torch.Tensor, h: torch.Tensor, flip: torch.Tensor
) -> torch.Tensor:
    """Resample box (x0, y0, w, h) of each image onto the full image size, mirrored where ``flip``.

    torchvision's ``roi_align`` with one bilinear sample per output pixel (``aligned=True``) is exactly
    a batched crop-and-resize: output pixel i samples x0 + (i + ½)·w/W − ½, clamped at the border. A
    mirrored box (x0 + w → x0, negative width) samples the same points right to left: an exact flip in
    the same pass. One kernel on the CPU and on CUDA, without per-image Python loops.
    """
    n, _, height, width = x.shape
    left = torch.where(flip, x0 + w, x0)
    right = torch.where(flip, x0, x0 + w)
    index = torch.arange(n, device=x.device, dtype=torch.float32)
    boxes = torch.stack([index, left, y0, right, y0 + h], dim=1)
    from torchvision.ops import roi_align  # imported on first use: 0.5-0.8 s of every run otherwise

    work = x if x.dtype in (torch.float32, torch.float64) else x.float()
    out = roi_align(
        work, boxes.to(work.dtype), (height, width), spatial_scale=1.0, sampling_ratio=1, aligned=True
    )
    return out.to(x.dtype)


# -- measurement -----------------------------------------------------------------------------------

_RANDOM_OPS = (
    "uniform_",
    "normal_",
    "bernoulli",
    "bernoulli_",
    "random_",
    "exponential_",
    "geometric_",
    "log_normal_",
    "cauchy_",
    "multinomial",
    "rand",
    "randn",
    "randint",
    "randperm",
    "rand_like",
    "randn_like",
    "randint_like",
    "normal",
    "poisson",
)


@dataclass(frozen=True)
class RandomCall:
    """A random op seen by :func:`audit_random_ops`: name, device, whether a generator was passed."""

    op: str
    device: str
    explicit_generator: bool


class _RandomOpRecorder(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[RandomCall] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        out = func(*args, **kwargs)
        if name in _RANDOM_OPS:
            tensor = (
                out
                if isinstance(out, torch.Tensor)
                else next((a for a in args if isinstance(a, torch.Tensor)), None)
            )
            device = str(tensor.device) if tensor is not None else "?"
            self.calls.append(RandomCall(name, device, kwargs.get("generator") is not None))
        return out


def audit_random_ops(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, list[RandomCall]]:
    """Run ``fn(*args, **kwargs)`` and list every random-number op it dispatched (op, device, generator?).

    Used by the tests and the benchmark to show that augmentation draws on the input's device from its
    own generator, and that Kornia's modules draw on the CPU from the global one.
    """
    recorder = _RandomOpRecorder()
    with recorder:
        result = fn(*args, **kwargs)
    return result, recorder.calls
