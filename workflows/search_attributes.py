"""Custom search attributes ops staff filter on in the Web UI. No PHI: stages, ids, times only.

Example list filters: `OutreachStage = "awaiting_therapist" AND EscalationLevel >= 4`;
stuck for two hours: `ExecutionStatus = "Running" AND StageSince < "2026-11-24T12:00:00Z"`.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

OUTREACH_STAGE = SearchAttributeKey.for_keyword("OutreachStage")
THERAPIST_ID = SearchAttributeKey.for_keyword("TherapistId")
APPOINTMENT_START = SearchAttributeKey.for_datetime("AppointmentStart")
ESCALATION_LEVEL = SearchAttributeKey.for_int("EscalationLevel")
CASE_OUTCOME = SearchAttributeKey.for_keyword("CaseOutcome")
STAGE_SINCE = SearchAttributeKey.for_datetime("StageSince")

ALL_KEYS: tuple[SearchAttributeKey, ...] = (  # type: ignore[type-arg]
    OUTREACH_STAGE,
    THERAPIST_ID,
    APPOINTMENT_START,
    ESCALATION_LEVEL,
    CASE_OUTCOME,
    STAGE_SINCE,
)
