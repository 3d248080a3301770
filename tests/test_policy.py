"""The escalation policy: every limit enforced where a policy is loaded, none when a case's
stored input is decoded again on replay (a tightened rule must never break an open case)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.contrib.pydantic import pydantic_data_converter

from models.policy import EscalationPolicy, PolicyError, load_policy, validate_policy

DEFAULT = load_policy("policies/default.toml")
RAW: dict[str, Any] = DEFAULT.model_dump(mode="json")


def _error(**changes: Any) -> str:
    with pytest.raises(PolicyError) as raised:
        validate_policy({**RAW, **changes}, "test.toml")
    message = str(raised.value)
    assert message.startswith("invalid escalation policy test.toml: ")
    assert "https://" not in message and "Value error" not in message
    assert "\n" not in message
    return message


def test_the_shipped_policies_load() -> None:
    demo = load_policy("policies/demo.toml")
    assert demo.demo and demo.grace == timedelta(seconds=3)
    assert DEFAULT.message_retry_for == timedelta(minutes=5)
    assert DEFAULT.supervisor_renotify_every == timedelta(hours=24)
    assert [len(DEFAULT.client_rounds(r)) for r in ("standard", "elevated", "high")] == [3, 2, 1]


@pytest.mark.parametrize("grace", ["14m", "31m", "3s", "PT45M"])
def test_grace_must_be_15_to_30_minutes_unless_demo(grace: str) -> None:
    assert "grace: must be between 15 and 30 minutes" in _error(grace=grace)
    assert validate_policy({**RAW, "grace": "3s", "demo": True}).grace == timedelta(seconds=3)


@pytest.mark.parametrize("wait", ["-5m", "-PT5M", "-P1D", -300, -0.5, " -5m", "0s"])
def test_negative_and_zero_waits_are_rejected_in_every_notation(wait: Any) -> None:
    assert "emergency_contact_wait" in _error(emergency_contact_wait=wait)


@pytest.mark.parametrize("wait", ["99999999d", "31d", 1e12, "9999999999999w"])
def test_absurd_waits_are_a_clean_error_not_an_overflow(wait: Any) -> None:
    assert "therapist_reminder_every" in _error(therapist_reminder_every=wait)


def test_unknown_or_misspelt_keys_are_rejected_at_every_level() -> None:
    assert "unknown field therapist_reminder_evry" in _error(therapist_reminder_evry="4h")
    assert "quiet_hours: unknown key stat" in _error(quiet_hours={"stat": "21:00"})
    rounds = [{**RAW["rounds"][0], "then_wiat": "1h"}]
    assert "rounds.0: unknown key then_wiat" in _error(rounds=rounds)


def test_every_bad_field_is_named_at_once() -> None:
    message = _error(
        attendance_window_days=99_999_999, currency="dollars", name="x\x00y", rounds=[]
    )
    for field in ("attendance_window_days", "currency", "name", "rounds"):
        assert f"{field}:" in message


def test_rounds_before_the_emergency_contact_must_exist() -> None:
    assert "client_rounds_before_emergency_contact.standard" in _error(
        client_rounds_before_emergency_contact={"standard": 9, "elevated": 1, "high": 1}
    )


def test_file_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "x"\ngrace = \n')
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policy(broken)


def test_a_policy_the_edge_rejects_still_decodes_from_history() -> None:
    """An open case's input was accepted under the rules of its day; replay must read it."""
    old = {**RAW, "grace": "PT45M", "retired_setting": True, "therapist_max_reminders": 99}
    policy = EscalationPolicy.model_validate(old)
    assert policy.grace == timedelta(minutes=45)
    converter = pydantic_data_converter.payload_converter
    [payload] = converter.to_payloads([old])
    [decoded] = converter.from_payloads([payload], [EscalationPolicy])
    assert decoded.grace == timedelta(minutes=45)


junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None, max_examples=200)
@given(st.dictionaries(st.sampled_from([*RAW, "extra"]), junk, max_size=8))
def test_junk_is_only_ever_a_policy_error(changes: dict[str, Any]) -> None:
    try:
        validate_policy({**RAW, **changes})
    except PolicyError as exc:
        assert "\n" not in str(exc)
