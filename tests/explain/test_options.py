"""The run's explanation options name the CAM methods the explain package implements."""

from ignite_cv.config import TrainConfig, parse_config
from ignite_cv.explain.cam import METHODS
from ignite_cv.explain.options import CAM_METHODS
from ignite_cv.utils.errors import UserError


def test_the_method_choices_are_the_packages_methods():
    assert CAM_METHODS == METHODS


def test_the_report_cams_are_on_by_default_and_can_be_turned_off():
    assert (TrainConfig().explain, TrainConfig().explain_method, TrainConfig().explain_images) == (
        "report",
        "gradcam",
        8,
    )
    config = parse_config(TrainConfig, ["--explain", "none", "--log-histograms", "2"])
    assert (config.explain, config.log_histograms) == ("none", 2)
    try:
        parse_config(TrainConfig, ["--explain-images", "-1"])
    except UserError as err:
        assert "--explain-images -1 is below its minimum 0" in str(err)
    else:
        raise AssertionError("a negative --explain-images was accepted")
