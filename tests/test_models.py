"""Pure logic without Temporal: quiet hours, policy validation, fees, messages, durations."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from models.case import MissedSessionInput, Purpose
from models.directory import Channel, ClientProfile
from models.durations import format_duration, parse_duration
from models.fees import assess_fee
from models.messages import MessageFacts, PracticeInfo, compose
from models.policy import EscalationPolicy, QuietHours, load_policy
from models.quiet_hours import in_quiet_hours, next_allowed_send_time
from models.signals import ClientReached, FeeChoice, FeeDecision

POLICY = load_policy("policies/default.toml")
NY = "America/New_York"
QUIET = QuietHours()


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(NY))


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        (ny(2026, 11, 23, 12, 0), ny(2026, 11, 23, 12, 0)),  # daytime: now
        (ny(2026, 11, 23, 20, 59), ny(2026, 11, 23, 20, 59)),
        (ny(2026, 11, 23, 21, 0), ny(2026, 11, 24, 8, 0)),  # evening: tomorrow 08:00
        (ny(2026, 11, 23, 23, 30), ny(2026, 11, 24, 8, 0)),
        (ny(2026, 11, 24, 3, 0), ny(2026, 11, 24, 8, 0)),  # small hours: today 08:00
        (ny(2026, 11, 24, 8, 0), ny(2026, 11, 24, 8, 0)),
        (ny(2026, 3, 7, 22, 0), ny(2026, 3, 8, 8, 0)),  # across the spring DST change
        (ny(2026, 10, 31, 22, 0), ny(2026, 11, 1, 8, 0)),  # across the autumn DST change
    ],
)
def test_next_allowed_send_time_in_the_recipients_zone(local: datetime, expected: datetime) -> None:
    result = next_allowed_send_time(local.astimezone(UTC), NY, QUIET)
    assert result == expected
    assert result.astimezone(ZoneInfo(NY)).hour == expected.hour


def test_the_same_instant_is_quiet_in_one_zone_and_not_another() -> None:
    instant = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)  # 22:00 in New York, 19:00 in LA
    assert next_allowed_send_time(instant, NY, QUIET) > instant
    assert next_allowed_send_time(instant, "America/Los_Angeles", QUIET) == instant


def test_disabled_quiet_hours_never_defer() -> None:
    instant = ny(2026, 11, 23, 23, 0).astimezone(UTC)
    assert next_allowed_send_time(instant, NY, QuietHours(enabled=False)) == instant


@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)))
def test_next_allowed_time_is_never_earlier_and_never_quiet(naive: datetime) -> None:
    now = naive.replace(tzinfo=UTC)
    allowed = next_allowed_send_time(now, NY, QUIET)
    assert allowed >= now
    assert allowed - now <= timedelta(hours=12)
    assert not in_quiet_hours(allowed.astimezone(ZoneInfo(NY)).time(), QUIET)


def test_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_allowed_send_time(datetime(2026, 1, 1, 12), NY, QUIET)


def test_production_policy_grace_must_be_15_to_30_minutes() -> None:
    data = POLICY.model_dump()
    for grace in (timedelta(minutes=14), timedelta(minutes=31), timedelta(seconds=3)):
        with pytest.raises(ValidationError, match="between 15 and 30 minutes"):
            EscalationPolicy.model_validate({**data, "grace": grace})
    demo = EscalationPolicy.model_validate({**data, "grace": "3s", "demo": True})
    assert demo.grace == timedelta(seconds=3)


def test_policy_rounds_before_emergency_contact_depend_on_risk() -> None:
    assert [len(POLICY.client_rounds(r)) for r in ("standard", "elevated", "high")] == [3, 2, 1]
    with pytest.raises(ValidationError, match="client_rounds_before_emergency_contact"):
        EscalationPolicy.model_validate(
            {**POLICY.model_dump(), "client_rounds_before_emergency_contact": {"standard": 9}}
        )


def test_policy_files_load(tmp_path: object) -> None:
    assert load_policy("policies/demo.toml").demo
    assert POLICY.quiet_hours.start == time(21) and POLICY.rounds[0].then_wait == timedelta(
        minutes=30
    )


def test_naive_scheduled_start_is_rejected_with_a_clear_message() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        MissedSessionInput(
            appointment_id="A1",
            client_id="C1",
            therapist_id="T1",
            scheduled_start=datetime(2026, 11, 23, 15, 0),
            policy=POLICY,
        )


def test_client_profile_validates_phone_and_time_zone() -> None:
    with pytest.raises(ValidationError, match=r"E\.164"):
        ClientProfile(client_id="C", first_name="A", phone="555-1234", time_zone=NY)
    with pytest.raises(ValidationError, match="IANA"):
        ClientProfile(client_id="C", first_name="A", time_zone="Mars/Olympus")
    client = ClientProfile(
        client_id="C",
        first_name="A",
        phone="+1 (555) 555-0101",
        time_zone=NY,
        consent={"sms": True, "email": True},  # type: ignore[arg-type]
    )
    assert client.phone == "+15555550101"
    assert client.reachable_channels() == [Channel.sms]  # email consented but no address


@pytest.mark.parametrize(
    ("payer_allows", "decision", "attended", "charged", "reason"),
    [
        (True, FeeDecision(decision=FeeChoice.charge), False, 7500, "charged"),
        (True, FeeDecision(decision=FeeChoice.waive, reason="illness"), False, 0, "waived"),
        (False, FeeDecision(decision=FeeChoice.charge), False, 0, "payer does not allow"),
        (True, FeeDecision(decision=FeeChoice.charge), True, 0, "attended"),
        (True, None, False, 0, "no decision"),
    ],
)
def test_fee_is_never_charged_where_the_payer_forbids_it(
    payer_allows: bool, decision: FeeDecision | None, attended: bool, charged: int, reason: str
) -> None:
    fee = assess_fee(POLICY, payer_allows, decision, attended)
    assert fee.charged_cents == charged
    assert reason in fee.reason


def test_fee_waiver_needs_a_reason_and_reached_needs_note_and_plan() -> None:
    with pytest.raises(ValidationError, match="waiver needs a reason"):
        FeeDecision(decision=FeeChoice.waive)
    with pytest.raises(ValidationError) as err:
        ClientReached.model_validate({"outcome": "reached_safe", "fee": {"decision": "charge"}})
    assert {e["loc"][0] for e in err.value.errors()} == {"note", "follow_up_plan"}


def _facts(detailed: bool = False) -> MessageFacts:
    return MessageFacts(
        practice=PracticeInfo(name="Riverside Practice", callback_number="+15555550100"),
        case_id="missed-session-A1",
        client_first_name="Alex",
        client_time_zone=NY,
        detailed_ok=detailed,
        therapist_name="Dr. Maya Lin",
        recipient_name="Jordan",
        scheduled_start=ny(2026, 11, 23, 15, 0),
    )


def test_client_messages_say_the_minimum() -> None:
    voicemail = compose(Purpose.client_outreach, Channel.voice, _facts()).body
    assert "Alex" in voicemail and "+15555550100" in voicemail
    for word in ("therapy", "session", "Dr. Maya Lin", "appointment"):
        assert word.lower() not in voicemail.lower()
    sms = compose(Purpose.client_outreach, Channel.sms, _facts()).body
    assert "3:00 PM appointment" in sms and "session" not in sms
    detailed = compose(Purpose.client_outreach, Channel.voice, _facts(detailed=True)).body
    assert "session with Dr. Maya Lin" in detailed
    for purpose in Purpose:
        for channel in Channel:
            body = compose(purpose, channel, _facts()).body.upper()
            assert "THERAPY" not in body
            assert not any(f"REPLY {k}" in body for k in ("STOP", "CANCEL", "END", "QUIT"))


def test_emergency_contact_and_staff_messages_reveal_nothing_clinical() -> None:
    contact = compose(Purpose.emergency_contact_check, Channel.sms, _facts()).body
    assert "ask Alex to contact their provider" in contact
    for word in ("session", "appointment", "missed", "Dr."):
        assert word.lower() not in contact.lower()
    staff = compose(Purpose.therapist_confirmation, Channel.sms, _facts()).body
    assert "missed-session-A1" in staff and "Alex" not in staff


def test_durations_parse_and_format() -> None:
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("45s") == timedelta(seconds=45)
    assert format_duration(timedelta(days=1, hours=2, seconds=5)) == "1d 2h 5s"
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")
