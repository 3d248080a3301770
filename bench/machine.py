"""What machine a benchmark ran on, said the same way by every script in `bench/`."""

from __future__ import annotations

import os
import platform


def memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def machine_line() -> str:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = memory_bytes()
    shown = f"{memory / 2**30:.1f} GiB" if memory else "unknown"
    return (
        f"machine: {os.cpu_count()} cores ({usable} usable), {shown} memory, "
        f"{platform.machine()}; Python {platform.python_version()}"
    )
