"""Load recipe and tool scripts (scripts, not a package) and run them in-process or as a subprocess."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_script(path: Path, name: str):
    """Import a script as module ``name`` (registered in ``sys.modules``, as dataclasses need)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_recipe(name: str):
    return load_script(REPO / "recipes" / f"{name}.py", f"recipe_{name}")


def load_tool(name: str):
    return load_script(REPO / "tools" / f"{name}.py", f"ignite_cv_tool_{name}")


def run_script(args: list[str], cwd: Path, timeout: float = 300, env: dict | None = None):
    """Run ``python args...`` with stdout/stderr captured (so stdout is not a terminal)."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env
    )
