"""Cached bytecode for the workflow modules, which Temporal's sandbox imports anew for every case.

The sandbox runs each workflow in a fresh copy of its module (so one case cannot leak state into
another): a case taken into the worker's cache, or replayed after eviction, imports
`workflows/missed_session.py` again. Without a `__pycache__` file that import compiles the
source, about 10 ms each on these machines, and `PYTHONDONTWRITEBYTECODE` (set here) keeps Python
from ever writing one. py_compile writes it regardless; an up-to-date file costs a stat.
"""

from __future__ import annotations

import compileall
import logging
from pathlib import Path

import workflows

log = logging.getLogger(__name__)


def compile_workflow_modules() -> bool:
    """Write (or confirm) the bytecode of every module under workflows/. False if it could not
    be written (a read-only install): the sandbox then compiles the source, slower but correct."""
    folder = Path(workflows.__file__).resolve().parent
    try:
        return bool(compileall.compile_dir(folder, quiet=1, workers=1))
    except OSError as exc:
        log.warning(
            "workflow bytecode not written (%s): each case's import compiles its source", exc
        )
        return False
