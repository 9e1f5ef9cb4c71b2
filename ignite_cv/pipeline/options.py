"""Options of the on-device batch pipeline (augmentation and normalization).

Augmentation magnitudes are in the units of the image in [0, 1] before normalization; sizes and
translations are fractions of the image, angles are degrees. A preset decides which operations run
(``ignite_cv.pipeline.augment.PRESET_OPS``); the ``aug_*`` fields tune them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ignite_cv.utils.options import option

AUGMENTATIONS = ("none", "flip", "standard", "strong")
NORMALIZATIONS = ("meanstd", "imagenet", "gcn", "none")


@dataclass
class PipelineOptions:
    augment: str = option(
        "none",
        "augmentation preset, run on the device in training steps only: flip = horizontal flip; "
        "standard = random resized crop + flip + colour jiggle; strong = standard + affine + random erasing",
        choices=AUGMENTATIONS,
    )
    aug_flip_p: float = option(
        0.5, "probability of a horizontal flip per image (flip, standard, strong)", minimum=0.0, maximum=1.0
    )
    aug_crop_p: float = option(
        1.0, "probability of a random resized crop per image (standard, strong)", minimum=0.0, maximum=1.0
    )
    aug_crop_scale_min: float = option(
        0.35,
        "random resized crop: smallest crop area as a fraction of the image (0 < min <= max <= 1)",
        minimum=1e-06,
        maximum=1.0,
    )
    aug_crop_scale_max: float = option(
        1.0, "random resized crop: largest crop area as a fraction of the image", minimum=1e-06, maximum=1.0
    )
    aug_crop_ratio_min: float = option(
        0.75,
        "random resized crop: smallest width/height aspect ratio of the crop",
        minimum=0.001,
        maximum=100.0,
    )
    aug_crop_ratio_max: float = option(
        4 / 3,
        "random resized crop: largest width/height aspect ratio of the crop",
        minimum=0.001,
        maximum=100.0,
    )
    aug_jiggle_p: float = option(
        0.8, "probability of the colour jiggle per image (standard, strong)", minimum=0.0, maximum=1.0
    )
    aug_jiggle: float = option(
        0.4,
        "colour jiggle magnitude m in [0, 1]: brightness, contrast and (RGB only) saturation factors "
        "are drawn from [1-m, 1+m]; grey images get brightness and contrast only",
        minimum=0.0,
        maximum=1.0,
    )
    aug_hue: float = option(
        0.05,
        "colour jiggle: largest hue rotation as a fraction of the colour circle, in [0, 0.5] (RGB only)",
        minimum=0.0,
        maximum=0.5,
    )
    aug_affine_p: float = option(
        0.5, "probability of the random affine per image (strong)", minimum=0.0, maximum=1.0
    )
    aug_affine_degrees: float = option(
        15.0, "random affine: largest rotation in degrees, in [0, 180]", minimum=0.0, maximum=180.0
    )
    aug_affine_translate: float = option(
        0.1,
        "random affine: largest shift as a fraction of the image width/height, in [0, 1]",
        minimum=0.0,
        maximum=1.0,
    )
    aug_affine_scale: float = option(
        0.1, "random affine: zoom factor drawn from [1-m, 1+m], m in [0, 1, minimum=0.0, maximum=0.99)"
    )
    aug_affine_shear: float = option(
        5.0, "random affine: largest horizontal shear in degrees, in [0, 60]", minimum=0.0, maximum=60.0
    )
    aug_erase_p: float = option(
        0.25,
        "probability of random erasing per image (strong); the box gets uniform noise",
        minimum=0.0,
        maximum=1.0,
    )
    aug_erase_scale_min: float = option(
        0.02, "random erasing: smallest box area as a fraction of the image", minimum=1e-06, maximum=0.99
    )
    aug_erase_scale_max: float = option(
        0.25, "random erasing: largest box area as a fraction of the image (< 1)", minimum=1e-06, maximum=0.99
    )
    normalize: str = option(
        "meanstd",
        "normalization: the training split's exact per-channel mean/std, "
        "ImageNet's constants, per-image global contrast normalization, or none",
        choices=NORMALIZATIONS,
    )
    gcn_scale: float = option(1.0, "GCN: output std s (> 0)", minimum=1e-12)
    gcn_lambda: float = option(
        0.0, "GCN: regulariser λ added to the variance (>= 0; Goodfellow et al. 2013: 0)", minimum=0.0
    )
    gcn_eps: float = option(
        1e-8, "GCN: floor ε on the denominator (> 0; Goodfellow et al. 2013: 1e-8)", minimum=1e-30
    )
    zca: bool = option(
        False,
        "after GCN, apply ZCA whitening fitted on the training split (needs --normalize gcn and at most "
        "3072 values per image, e.g. 32x32 RGB)",
    )
    zca_eps: float = option(
        0.1,
        "ZCA: regulariser added to the covariance eigenvalues (> 0; pylearn2's filter_bias, 0.1)",
        minimum=1e-12,
    )
