"""The official twilio and sendgrid clients, through our providers, against a local endpoint:
what goes on the wire, and how each provider error is classified."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from models.case import AttemptResult
from providers.base import PermanentDeliveryError, TransientDeliveryError
from providers.factory import build_providers, describe_providers
from providers.sendgrid_provider import SendGridEmail
from providers.twilio_provider import TwilioSms, TwilioVoice, call_outcome_from
from settings import Settings
from tests.fake_provider_server import FakeProviderServer

SID = "AC" + "0" * 32
TO = "+15555550101"


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeProviderServer]:
    monkeypatch.delenv("TWILIO_EDGE", raising=False)
    monkeypatch.delenv("TWILIO_REGION", raising=False)
    async with FakeProviderServer() as server:
        yield server


def _twilio(fake: FakeProviderServer) -> tuple[TwilioSms, TwilioVoice]:
    args = (SID, "token", "+15555550100", fake.base_url)
    return TwilioSms(*args), TwilioVoice(*args)


async def test_sms_on_the_wire(fake: FakeProviderServer) -> None:
    sms, _ = _twilio(fake)
    receipt = await sms.send_sms(TO, "Hi Alex")
    [request] = fake.sms()
    assert request.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert request.form == {"To": TO, "From": "+15555550100", "Body": "Hi Alex"}
    assert receipt.provider_id and receipt.provider_id.startswith("SM")
    assert TO not in receipt.detail


async def test_call_speaks_after_the_beep_and_reports_voicemail(fake: FakeProviderServer) -> None:
    _, voice = _twilio(fake)
    receipt = await voice.start_call(TO, "Hello Alex & family <test>")
    [request] = fake.calls()
    assert request.form["MachineDetection"] == "DetectMessageEnd"
    assert "<Say>Hello Alex &amp; family &lt;test&gt;</Say>" in request.form["Twiml"]
    assert receipt.provider_id is not None
    outcome = await voice.call_outcome(receipt.provider_id)
    assert outcome is not None and outcome.result is AttemptResult.voicemail


@pytest.mark.parametrize(
    ("answered_by", "status", "expected"),
    [
        ("human", "completed", AttemptResult.answered),
        (None, "busy", AttemptResult.busy),
        (None, "no-answer", AttemptResult.no_answer),
        (None, "failed", AttemptResult.failed),
    ],
)
async def test_call_outcomes(
    fake: FakeProviderServer, answered_by: str | None, status: str, expected: AttemptResult
) -> None:
    _, voice = _twilio(fake)
    if answered_by:
        fake.answered_by[TO] = answered_by
    fake.call_status[TO] = status
    receipt = await voice.start_call(TO, "Hello")
    assert receipt.provider_id is not None
    outcome = await voice.call_outcome(receipt.provider_id)
    assert outcome is not None and outcome.result is expected


def test_calls_in_progress_have_no_outcome_yet() -> None:
    for status in ("queued", "ringing", "in-progress"):
        assert call_outcome_from(status, None) is None
    machine_start = call_outcome_from("completed", "machine_start")
    assert machine_start is not None and machine_start.result is AttemptResult.no_answer


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        (21211, 400, AttemptResult.invalid_recipient),
        (21614, 400, AttemptResult.invalid_recipient),
        (21610, 400, AttemptResult.opted_out),
        (30005, 400, AttemptResult.failed),
    ],
)
async def test_permanent_twilio_errors_are_not_retried(
    fake: FakeProviderServer, code: int, status: int, expected: AttemptResult
) -> None:
    sms, _ = _twilio(fake)
    fake.reject_number(TO, code=code, status=status)
    with pytest.raises(PermanentDeliveryError) as err:
        await sms.send_sms(TO, "Hi")
    assert err.value.result is expected and err.value.code == code


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_throttling_and_server_errors_are_retryable(
    fake: FakeProviderServer, status: int
) -> None:
    sms, _ = _twilio(fake)
    fake.fail_next("Messages.json", status)
    with pytest.raises(TransientDeliveryError):
        await sms.send_sms(TO, "Hi")
    assert (await sms.send_sms(TO, "Hi")).provider_id  # the retry goes through


async def test_unreachable_twilio_is_retryable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    sms = TwilioSms(SID, "token", "+15555550100", f"http://127.0.0.1:{closed_port}")
    with pytest.raises(TransientDeliveryError):
        await sms.send_sms(TO, "Hi")


async def test_email_on_the_wire(fake: FakeProviderServer) -> None:
    email = SendGridEmail("SG.key", "care@example.org", fake.base_url)
    receipt = await email.send_email("alex@example.org", "Checking in", "Body", "case/step")
    [request] = fake.emails()
    body = request.json or {}
    assert body["personalizations"][0]["to"] == [{"email": "alex@example.org"}]
    assert body["from"]["email"] == "care@example.org"
    assert body["subject"] == "Checking in"
    assert body["content"] == [{"type": "text/plain", "value": "Body"}]
    assert body["custom_args"] == {"outreach_key": "case/step"}
    assert request.headers["Authorization"] == "Bearer SG.key"
    assert receipt.provider_id


@pytest.mark.parametrize(
    ("status", "error"),
    [(429, TransientDeliveryError), (500, TransientDeliveryError), (400, PermanentDeliveryError)],
)
async def test_email_errors_are_classified(
    fake: FakeProviderServer, status: int, error: type[Exception]
) -> None:
    email = SendGridEmail("SG.key", "care@example.org", fake.base_url)
    fake.fail_next("/v3/mail/send", status)
    with pytest.raises(error):
        await email.send_email("alex@example.org", "S", "B", "k")


def test_without_credentials_every_channel_is_a_dry_run() -> None:
    assert describe_providers(build_providers(Settings())) == (
        "sms=dry-run voice=dry-run email=dry-run"
    )
    configured = Settings(
        twilio_account_sid=SID,
        twilio_auth_token=SecretStr("t"),
        twilio_from_number="+15555550100",
        sendgrid_api_key=SecretStr("k"),
        sendgrid_from_email="care@example.org",
    )
    assert describe_providers(build_providers(configured)) == (
        "sms=twilio voice=twilio email=sendgrid"
    )


async def test_dry_runs_send_nothing_and_mask_addresses() -> None:
    providers = build_providers(Settings())
    receipt = await providers.sms.send_sms(TO, "Hi")
    assert receipt.dry_run and receipt.detail == "dry run: would text ***0101"
    mail = await providers.email.send_email("alex@example.org", "S", "B", "k")
    assert mail.detail == "dry run: would email a***@example.org"
