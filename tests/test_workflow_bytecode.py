"""The workflow modules' bytecode is written even under PYTHONDONTWRITEBYTECODE: Temporal's
sandbox imports workflows/missed_session.py anew for every case it runs or replays, and each
import without it compiles the source (see temporal_env/bytecode.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import workflows
from temporal_env.bytecode import compile_workflow_modules


def test_every_workflow_module_gets_current_bytecode() -> None:
    folder = Path(workflows.__file__).resolve().parent
    for cached in folder.glob("__pycache__/*.pyc"):
        cached.unlink()
    assert compile_workflow_modules()
    for source in folder.glob("*.py"):
        cached = Path(importlib.util.cache_from_source(str(source)))
        assert cached.exists(), source.name
        assert cached.stat().st_mtime >= source.stat().st_mtime
