"""What a practice-management system or EHR reports through `POST /api/v1/events`: a no-show
(opens the case), a check-in, a cancellation. Each event carries the system's own event id, so
the same event delivered twice is recognised and changes nothing twice.

These models are the API's contract (FastAPI's OpenAPI schema and its 422 answers come from
them), so their limits are plain field constraints, checked where the request enters. They
never enter Temporal's history: the case service turns them into its own inputs.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field


def _no_control_characters(value: str) -> str:
    if any(unicodedata.category(c) == "Cc" and c not in "\n\t\r" for c in value):
        raise ValueError("must not contain control characters")
    return value


def _plausible(value: datetime) -> datetime:
    if not 2000 <= value.year <= 2200:
        raise ValueError("must be a date between the years 2000 and 2200")
    return value


ExternalId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="1-64 ASCII letters, digits, _ . : -",
    ),
]
EventTime = Annotated[AwareDatetime, AfterValidator(_plausible)]
EventNote = Annotated[
    str,
    Field(max_length=2000, description="Optional text for the case's timeline."),
    AfterValidator(_no_control_characters),
]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    event_id: ExternalId = Field(
        description="The reporting system's id of this event: the same id again is a repeat."
    )
    appointment_id: ExternalId = Field(description="The practice's id of the appointment.")
    note: EventNote = ""


class NoShowEvent(_Event):
    """The client did not come: opens the case (once per appointment, ever)."""

    type: Literal["no_show"]
    client_id: ExternalId
    scheduled_start: EventTime = Field(description="The session's start, with its offset.")
    therapist_id: ExternalId | None = Field(
        default=None, description="Default: the client's therapist (another one is refused)."
    )


class CheckInEvent(_Event):
    """The client checked in: in the grace wait the case closes silently (nothing sent);
    later it counts as a response."""

    type: Literal["checked_in"]


class CancellationEvent(_Event):
    """The session was cancelled, or moved to `moved_to`: outreach stops, the therapist closes."""

    type: Literal["cancelled"]
    moved_to: EventTime | None = None


PracticeEvent = Annotated[
    NoShowEvent | CheckInEvent | CancellationEvent, Field(discriminator="type")
]

EventResult = Literal["opened", "already_open", "answered", "no_case"]


class EventAnswer(BaseModel):
    """What the event did. A repeat answers what the first delivery did, with `repeat` true."""

    event_id: str
    result: EventResult
    case_id: str | None = None
    message: str
    repeat: bool = False


def event_effect(event: NoShowEvent | CheckInEvent | CancellationEvent) -> str:
    """What the event means, whatever its id: the same meaning twice acts once (a case opens
    once per appointment, is told of its check-in once, of its cancellation once)."""
    return f"{event.type}/{event.appointment_id}"
