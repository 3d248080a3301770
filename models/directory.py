"""Who a case is about and who may be contacted: clients, emergency contacts, therapists.

These records hold PHI. They live in the case store and are read by activities only; the
workflow sees just the non-identifying facts it needs to decide (see `models.case.CaseContext`).
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field

from models.edge import checked_id, checked_text

_E164 = re.compile(r"^\+[1-9][0-9]{7,14}\Z")  # ASCII digits only: \d also matches "١٢٣"


def _check_e164(value: str) -> str:
    compact = re.sub(r"[ \-().]", "", value)
    if not _E164.match(compact):
        raise ValueError(
            "phone number must be in E.164 form with ASCII digits, such as +15551234567"
        )
    return compact


def is_time_zone(name: str) -> bool:
    """Whether `name` is an IANA zone this machine knows. Not only ZoneInfoNotFoundError: a
    folder of the zone database ("America") or an overlong name makes zoneinfo raise OSError."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _check_time_zone(value: str) -> str:
    if not is_time_zone(value):
        shown = value if len(value) <= 64 else value[:64] + "..."
        raise ValueError(f"unknown IANA time zone {shown!r} (e.g. America/New_York)")
    return value


PhoneNumber = Annotated[str, AfterValidator(_check_e164)]
TimeZoneName = Annotated[str, AfterValidator(_check_time_zone)]
Name = Annotated[str, Field(min_length=1), AfterValidator(checked_text(200))]
OptionalName = Annotated[str, AfterValidator(checked_text(200))]
RecordId = Annotated[str, Field(min_length=1), AfterValidator(checked_id)]
Email = Annotated[EmailStr, AfterValidator(checked_text(254))]
"""Limits (lengths that fit the store's columns, no control characters, ASCII ids) apply where
records enter (the CSV import validates with `models.edge.EDGE`), not when the store reads back
a record written under older rules."""


class Channel(StrEnum):
    voice = "voice"
    sms = "sms"
    email = "email"


class RiskLevel(StrEnum):
    standard = "standard"
    elevated = "elevated"
    high = "high"


class ChannelConsent(BaseModel):
    """What the client agreed to be contacted by. Absent consent means no contact."""

    model_config = ConfigDict(frozen=True)

    voice: bool = False
    sms: bool = False
    email: bool = False

    def allows(self, channel: Channel) -> bool:
        return bool(getattr(self, channel.value))


class EmergencyContact(BaseModel):
    name: Name
    relationship: Name
    phone: PhoneNumber | None = None
    email: Email | None = None
    consent_to_contact: bool = False

    def reachable_channels(self) -> list[Channel]:
        """Channels with an address, in outreach order; empty without recorded consent."""
        if not self.consent_to_contact:
            return []
        return [c for c in Channel if _address_for(c, self.phone, self.email)]


class ConsentChange(BaseModel):
    """A change of consent after the directory was imported (e.g. the client replied STOP)."""

    at: datetime
    channel: Channel
    granted: bool
    source: str


class ClientProfile(BaseModel):
    client_id: RecordId
    first_name: Name
    last_name: OptionalName = ""
    phone: PhoneNumber | None = None
    email: Email | None = None
    time_zone: TimeZoneName
    consent: ChannelConsent = ChannelConsent()
    detailed_voicemail_ok: bool = False
    risk: RiskLevel = RiskLevel.standard
    payer_allows_no_show_fee: bool = True
    therapist_id: RecordId | None = None
    emergency_contact: EmergencyContact | None = None
    consent_changes: list[ConsentChange] = Field(
        default=[],
        description="Withdrawals and grants since import; a withdrawal survives re-imports.",
    )

    def reachable_channels(self) -> list[Channel]:
        """Channels the client consented to and has an address for, in outreach order."""
        return [
            c for c in Channel if self.consent.allows(c) and _address_for(c, self.phone, self.email)
        ]


class Therapist(BaseModel):
    therapist_id: RecordId
    name: Name
    email: Email
    phone: PhoneNumber | None = None
    supervisor_id: RecordId | None = None

    def reachable_channels(self) -> list[Channel]:
        return [c for c in Channel if _address_for(c, self.phone, self.email)]


def _address_for(channel: Channel, phone: str | None, email: str | None) -> str | None:
    return email if channel is Channel.email else phone
