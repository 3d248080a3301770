"""Reaction times read from a case's history (the server's own timestamps, so the driver's
polling does not count): from the grace timer firing to the first outreach request starting,
and from the therapist's close-out to the resolution written to the case store (the
`record_resolution` step completed). The close-out starts when the driver sends it, not at the
Update's "accepted" event: that event is written only once a busy worker has taken the Update
up, so the wait for the worker would not count."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory

_SENDS = frozenset({"send_messages", "place_call", "send_sms", "send_email"})


def _at(event: object) -> datetime:
    """The event's server time, naive UTC (as protobuf gives it)."""
    return event.event_time.ToDatetime()  # type: ignore[attr-defined,no-any-return]


def reaction_times(
    history: WorkflowHistory, close_sent: datetime | None
) -> tuple[float | None, float | None]:
    """(grace fired -> first send started, close-out sent -> resolution recorded), s; the
    second is None for a case the driver did not close out."""
    events = list(history.events)
    scheduled: dict[int, str] = {}
    first_timer_fired: datetime | None = None
    first_send: datetime | None = None
    accepted: datetime | None = None
    recorded: datetime | None = None
    for event in events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_TIMER_FIRED and first_timer_fired is None:
            first_timer_fired = _at(event)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = (
                event.activity_task_scheduled_event_attributes.activity_type.name
            )
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED and first_send is None:
            started = event.activity_task_started_event_attributes.scheduled_event_id
            if scheduled.get(started) in _SENDS and first_timer_fired is not None:
                first_send = _at(event)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            update = event.workflow_execution_update_accepted_event_attributes
            if update.accepted_request.input.name == "client_reached":
                accepted = _at(event)
        elif kind == EventType.EVENT_TYPE_MARKER_RECORDED and accepted is not None:
            details = event.marker_recorded_event_attributes.details
            if b"record_resolution" in b"".join(p.data for p in details["data"].payloads):
                recorded = _at(event)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED and accepted is not None:
            done = event.activity_task_completed_event_attributes.scheduled_event_id
            if scheduled.get(done) == "record_resolution":
                recorded = _at(event)
    outreach = (
        (first_send - first_timer_fired).total_seconds()
        if first_send and first_timer_fired
        else None
    )
    sent = close_sent.astimezone(UTC).replace(tzinfo=None) if close_sent else None
    closing = (recorded - sent).total_seconds() if recorded and sent else None
    return outreach, closing


def floor_outreach_reaction(history: WorkflowHistory) -> float | None:
    """The first figure for a `bench.floor` workflow, Temporal's own share of it: from its
    first timer firing to the next activity starting (a no-op where the case sends its first
    message), in seconds."""
    fired: datetime | None = None
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_TIMER_FIRED and fired is None:
            fired = _at(event)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED and fired:
            return (_at(event) - fired).total_seconds()
    return None


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]
