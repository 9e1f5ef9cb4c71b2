"""A training run's explanation options: CAMs in the report, weight/gradient histograms in TensorBoard."""

from __future__ import annotations

from dataclasses import dataclass

from ignite_cv.utils.options import option

#: Kept in step with :data:`ignite_cv.explain.cam.METHODS` (a test checks it); plus ``none``.
CAM_METHODS = ("gradcam", "gradcam++", "scorecam")


@dataclass
class ExplainOptions:
    explain: str = option(
        "report",
        "report: add CAM overlays of the most confidently wrong and of seeded random correct test images to "
        "report/ and TensorBoard; none: off",
        choices=("report", "none"),
    )
    explain_method: str = option("gradcam", "CAM method of the report's overlays", choices=CAM_METHODS)
    explain_images: int = option(8, "images per CAM grid in the report (0 = none)", minimum=0, maximum=64)
    explain_layer: str = option("auto", "layer the report's CAMs explain (auto: the last conv block)")
    log_histograms: int = option(
        0, "every N epochs, per-layer weight and gradient-norm histograms to TensorBoard (0 = off)", minimum=0
    )
