import os
import platform
import subprocess
import sys

import pytest

PROBE = "from ignite_cv.utils.allocator import tune_cpu_allocator as t; print(t(), t())"


def _probe(**env: str) -> str:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "IGNITE_CV_SYSTEM_MALLOC"
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's"
)
def test_thresholds_are_set_once_on_glibc():
    assert _probe() == "True True"


@pytest.mark.parametrize("env", [{"IGNITE_CV_SYSTEM_MALLOC": "1"}, {"MALLOC_TRIM_THRESHOLD_": "131072"}])
def test_a_users_own_malloc_settings_are_left_alone(env):
    assert _probe(**env) == "False False"
