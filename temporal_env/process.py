"""Process exit for programs that used the Temporal client.

The SDK's Rust bridge keeps threads that can crash CPython's interpreter finalization
("Fatal Python error: PyGILState_Release", temporalio/sdk-python#300, open). Once all work is
done and awaited, flush the streams and leave without finalization.
"""

from __future__ import annotations

import os
import sys


def exit_now(code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
