"""Worker logs that name the case and the step on every line, never PHI; JSON for log shippers.

    configure_logging()                 # 2026-11-24 10:00:00 INFO outreach [case=... step=...] ...
    configure_logging(json_format=True) # {"time": ..., "level": ..., "case_id": ..., ...}

The case id comes from the record's own `extra`, else from the Temporal activity or workflow the
line was logged in. Expected provider refusals are raised as BENIGN application errors, so the
SDK logs them at DEBUG and our activity writes one WARNING line for each, without a traceback.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from temporalio import activity, workflow

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "case_id", "step"}
_TEXT = "%(asctime)s %(levelname)s %(name)s [case=%(case_id)s step=%(step)s] %(message)s"


class CaseContextFilter(logging.Filter):
    """Adds `case_id` and `step` to every record (ids only)."""

    def filter(self, record: logging.LogRecord) -> bool:
        case_id, step = getattr(record, "case_id", None), getattr(record, "step", None)
        if case_id is None and activity.in_activity():
            info = activity.info()
            case_id, step = info.workflow_id, step or info.activity_type
        elif case_id is None and workflow.in_workflow():
            info = workflow.info()
            case_id, step = info.workflow_id, step or "workflow"
        elif case_id is None:
            details = getattr(record, "temporal_activity", None) or getattr(
                record, "temporal_workflow", None
            )
            if isinstance(details, dict):
                case_id = details.get("workflow_id")
                step = step or details.get("activity_type") or details.get("workflow_type")
        record.case_id = case_id or "-"
        record.step = step or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; an exception is one `error` field (a traceback only at DEBUG)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "case_id": getattr(record, "case_id", "-"),
            "step": getattr(record, "step", "-"),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and isinstance(value, str | int | float | bool):
                entry[key] = value
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            entry["error"] = f"{type(error).__name__}: {error}"
            if logging.getLogger().isEnabledFor(logging.DEBUG):
                entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(json_format: bool = False, level: int = logging.INFO) -> logging.Handler:
    """Set up the root logger once (calling it again replaces our handler)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_outreach", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler()
    handler._outreach = True  # type: ignore[attr-defined]
    handler.addFilter(CaseContextFilter())
    handler.setFormatter(JsonFormatter() if json_format else logging.Formatter(_TEXT))
    root.addHandler(handler)
    root.setLevel(level)
    return handler
