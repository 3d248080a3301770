"""The official `twilio` and `sendgrid` clients, through our provider classes, against a local
fake of both APIs: what goes on the wire, what comes back, and how errors are classified."""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import socket
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from email.utils import formatdate
from typing import Any

import aiohttp
import pytest
from twilio.base.exceptions import TwilioRestException

import providers.sendgrid_provider as sendgrid_provider
import providers.twilio_provider as twilio_provider
from models.case import AttemptResult
from providers.base import (
    RETRY_AFTER_CAP_SECONDS,
    PermanentDeliveryError,
    TransientDeliveryError,
    parse_retry_after,
)
from providers.dry_run import DryRunEmail, DryRunSms, DryRunVoice
from providers.factory import build_providers, describe_providers
from providers.sendgrid_provider import SendGridEmail
from providers.twilio_provider import TwilioSms, TwilioVoice, call_outcome_from, classify
from settings import Settings
from tests.fake_provider_server import FakeProviderServer

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "test-token"
FROM_NUMBER = "+15555550100"
TO_NUMBER = "+15555550123"
FROM_EMAIL = "care@example.org"
TO_EMAIL = "alex@example.org"
SENDGRID_KEY = "SG.test-key"
BASIC_AUTH = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()

ENV_VARS = (
    "TWILIO_EDGE",
    "TWILIO_REGION",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_FROM_NUMBER",
    "TWILIO_API_BASE_URL",
    "SENDGRID_API_KEY",
    "SENDGRID_FROM_EMAIL",
    "SENDGRID_API_HOST",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:  # TWILIO_EDGE / TWILIO_REGION would rewrite the host
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def fake() -> AsyncIterator[FakeProviderServer]:
    async with FakeProviderServer() as server:
        yield server


TwilioFactory = Callable[..., Any]


@pytest.fixture
async def twilio() -> AsyncIterator[TwilioFactory]:
    """Makes Twilio providers and closes their aiohttp sessions afterwards."""
    made: list[TwilioSms | TwilioVoice] = []

    def make(cls: type[TwilioSms | TwilioVoice], base_url: str) -> Any:
        provider = cls(ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, base_url)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        if provider._client is not None:
            await provider._client.http_client.close()


@pytest.fixture
def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there: connection refused


@pytest.fixture
async def stalled_url() -> AsyncIterator[str]:
    """A server that accepts connections and never answers."""
    release = asyncio.Event()

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        writer.close()

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    release.set()
    server.close()
    await server.wait_closed()
    await asyncio.sleep(0.05)


def _no_phi(text: str) -> None:
    assert "5555550" not in text and "@" not in text, text


# -- Twilio SMS ----------------------------------------------------------------------------------


async def test_sms_goes_out_as_twilio_form(fake: FakeProviderServer, twilio: TwilioFactory) -> None:
    sms = twilio(TwilioSms, fake.base_url)
    receipt = await sms.send_sms(TO_NUMBER, "Hi Alex, please call us back.")

    [request] = fake.sms()
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.form == {
        "To": TO_NUMBER,
        "From": FROM_NUMBER,
        "Body": "Hi Alex, please call us back.",
    }
    assert request.headers["Authorization"] == BASIC_AUTH
    assert re.fullmatch(r"SM[0-9a-f]{32}", receipt.provider_id or "")
    assert receipt.provider_id == request.provider_id
    assert not receipt.dry_run and receipt.detail == "queued"
    _no_phi(receipt.detail)


async def test_twilio_edge_and_region_do_not_redirect_requests(
    fake: FakeProviderServer, twilio: TwilioFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    monkeypatch.setenv("TWILIO_REGION", "au1")
    receipt = await twilio(TwilioSms, fake.base_url).send_sms(TO_NUMBER, "Hello")
    assert receipt.provider_id == fake.sms()[0].provider_id


# -- Twilio voice --------------------------------------------------------------------------------


async def test_call_says_the_message_after_the_beep(
    fake: FakeProviderServer, twilio: TwilioFactory
) -> None:
    message = "Hello Alex, this is Riverside & Co. Please call 555-0100."
    receipt = await twilio(TwilioVoice, fake.base_url).start_call(TO_NUMBER, message)

    [request] = fake.calls()
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    assert request.form["To"] == TO_NUMBER and request.form["From"] == FROM_NUMBER
    assert request.form["MachineDetection"] == "DetectMessageEnd"
    assert "<Say>" in request.form["Twiml"]
    say = ET.fromstring(request.form["Twiml"]).find("Say")
    assert say is not None and say.text == message
    assert re.fullmatch(r"CA[0-9a-f]{32}", receipt.provider_id or "")
    assert receipt.detail == "queued"


@pytest.mark.parametrize(
    ("answered_by", "status", "expected"),
    [
        (None, None, AttemptResult.voicemail),  # the fake's default: machine_end_beep
        ("machine_end_beep", None, AttemptResult.voicemail),
        ("machine_end_silence", None, AttemptResult.voicemail),
        ("human", None, AttemptResult.answered),
        ("machine_start", None, AttemptResult.no_answer),
        (None, "busy", AttemptResult.busy),
        (None, "no-answer", AttemptResult.no_answer),
        (None, "canceled", AttemptResult.no_answer),
        (None, "failed", AttemptResult.failed),
        (None, "ringing", None),
        (None, "in-progress", None),
    ],
)
async def test_call_outcome_from_twilio(
    fake: FakeProviderServer,
    twilio: TwilioFactory,
    answered_by: str | None,
    status: str | None,
    expected: AttemptResult | None,
) -> None:
    if answered_by:
        fake.answered_by[TO_NUMBER] = answered_by
    if status:
        fake.call_status[TO_NUMBER] = status
    voice = twilio(TwilioVoice, fake.base_url)
    receipt = await voice.start_call(TO_NUMBER, "Hello")
    assert receipt.provider_id

    outcome = await voice.call_outcome(receipt.provider_id)

    assert (outcome and outcome.result) == expected
    assert [r.method for r in fake.requests] == ["POST", "GET"]
    assert fake.requests[1].path.endswith(f"/Calls/{receipt.provider_id}.json")
    if outcome is not None:
        _no_phi(outcome.detail)


@pytest.mark.parametrize("status", ["queued", "initiated", "ringing", "in-progress"])
def test_call_still_in_progress_has_no_outcome(status: str) -> None:
    assert call_outcome_from(status, None) is None


@pytest.mark.parametrize(
    ("status", "answered_by", "expected"),
    [
        ("completed", "machine_end_beep", AttemptResult.voicemail),
        ("completed", "machine_end_silence", AttemptResult.voicemail),
        ("completed", "machine_end_other", AttemptResult.voicemail),
        ("completed", "human", AttemptResult.answered),
        ("completed", "machine_start", AttemptResult.no_answer),
        ("completed", "fax", AttemptResult.no_answer),
        ("busy", None, AttemptResult.busy),
        ("no-answer", None, AttemptResult.no_answer),
        ("canceled", None, AttemptResult.no_answer),
        ("failed", None, AttemptResult.failed),
        ("", None, AttemptResult.failed),
    ],
)
def test_call_outcome_mapping(
    status: str, answered_by: str | None, expected: AttemptResult
) -> None:
    outcome = call_outcome_from(status, answered_by)
    assert outcome is not None and outcome.result == expected


# -- Twilio errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_throttling_and_server_errors_are_transient(
    fake: FakeProviderServer, twilio: TwilioFactory, status: int
) -> None:
    sms = twilio(TwilioSms, fake.base_url)
    fake.fail_next("Messages.json", status)
    with pytest.raises(TransientDeliveryError) as raised:
        await sms.send_sms(TO_NUMBER, "Hello")
    assert str(status) in str(raised.value)
    _no_phi(str(raised.value))

    receipt = await sms.send_sms(TO_NUMBER, "Hello")  # the retry goes through
    assert [r.status for r in fake.sms()] == [status, 201]
    assert receipt.provider_id == fake.sms()[1].provider_id


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (21211, AttemptResult.invalid_recipient),
        (21614, AttemptResult.invalid_recipient),
        (21610, AttemptResult.opted_out),
        (30005, AttemptResult.failed),
    ],
)
@pytest.mark.parametrize("channel", ["sms", "voice"])
async def test_recipient_errors_are_permanent(
    fake: FakeProviderServer,
    twilio: TwilioFactory,
    code: int,
    expected: AttemptResult,
    channel: str,
) -> None:
    fake.reject_number(TO_NUMBER, code=code)
    with pytest.raises(PermanentDeliveryError) as raised:
        if channel == "sms":
            await twilio(TwilioSms, fake.base_url).send_sms(TO_NUMBER, "Hello")
        else:
            await twilio(TwilioVoice, fake.base_url).start_call(TO_NUMBER, "Hello")
    assert raised.value.result == expected
    assert raised.value.code == code
    _no_phi(raised.value.detail)


async def test_other_client_errors_are_permanent_failures(
    fake: FakeProviderServer, twilio: TwilioFactory
) -> None:
    fake.fail_next("Messages.json", 400, code=21602)
    with pytest.raises(PermanentDeliveryError) as raised:
        await twilio(TwilioSms, fake.base_url).send_sms(TO_NUMBER, "Hello")
    assert raised.value.result == AttemptResult.failed and raised.value.code == 21602


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (502, 502, TransientDeliveryError),  # an HTML 502 from a proxy: the library uses the status
        (429, None, TransientDeliveryError),
        (401, 20003, PermanentDeliveryError),
        (400, None, PermanentDeliveryError),
    ],
)
def test_classify_without_a_recipient_code(
    status: int, code: int | None, expected: type[Exception]
) -> None:
    error = classify(TwilioRestException(status, "/Messages.json", "msg", code, "POST"))
    assert type(error) is expected
    if isinstance(error, PermanentDeliveryError):
        assert error.result == AttemptResult.failed


async def test_a_timeout_after_twilio_took_the_message_is_flagged_possibly_sent(
    fake: FakeProviderServer, twilio: TwilioFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twilio took the message but never answered: retryable, yet flagged as possibly sent, so
    the outreach activity records the attempt unconfirmed instead of texting again."""
    monkeypatch.setattr(twilio_provider, "REQUEST_TIMEOUT_SECONDS", 0.1)
    fake.delay_next("Messages.json", 0.4)
    with pytest.raises(TransientDeliveryError, match="no answer from Twilio within") as err:
        await twilio(TwilioSms, fake.base_url).send_sms(TO_NUMBER, "Hello")
    assert err.value.may_have_been_sent
    [accepted] = fake.sms()
    assert accepted.status == 201 and accepted.provider_id


async def test_unreachable_twilio_is_transient(closed_port_url: str, twilio: TwilioFactory) -> None:
    with pytest.raises(TransientDeliveryError, match="unreachable"):
        await twilio(TwilioSms, closed_port_url).send_sms(TO_NUMBER, "Hello")
    voice = twilio(TwilioVoice, closed_port_url)
    with pytest.raises(TransientDeliveryError, match="unreachable"):
        await voice.start_call(TO_NUMBER, "Hello")
    with pytest.raises(TransientDeliveryError, match="unreachable"):
        await voice.call_outcome("CA" + "1" * 32)


async def test_twilio_that_never_answers_times_out_as_transient(
    stalled_url: str, twilio: TwilioFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(twilio_provider, "REQUEST_TIMEOUT_SECONDS", 0.3)
    with pytest.raises(TransientDeliveryError, match="no answer from Twilio within"):
        await twilio(TwilioSms, stalled_url).send_sms(TO_NUMBER, "Hello")


# -- SendGrid --------------------------------------------------------------------------------------


def _sendgrid(host: str) -> SendGridEmail:
    return SendGridEmail(SENDGRID_KEY, FROM_EMAIL, host)


async def test_email_goes_out_as_sendgrid_json(fake: FakeProviderServer) -> None:
    receipt = await _sendgrid(fake.base_url).send_email(
        TO_EMAIL, "Checking in", "Please get in touch.", "missed-session-A1/client/1/email"
    )

    [request] = fake.emails()
    assert request.method == "POST" and request.status == 202
    assert request.headers["Authorization"] == f"Bearer {SENDGRID_KEY}"
    mail = request.json or {}
    assert mail["personalizations"][0]["to"][0]["email"] == TO_EMAIL
    assert mail["from"]["email"] == FROM_EMAIL
    assert mail["subject"] == "Checking in"
    assert mail["content"] == [{"type": "text/plain", "value": "Please get in touch."}]
    assert mail["custom_args"] == {"outreach_key": "missed-session-A1/client/1/email"}
    assert receipt.provider_id and receipt.provider_id == request.provider_id
    assert not receipt.dry_run and receipt.detail == "HTTP 202"


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_sendgrid_throttling_and_server_errors_are_transient(
    fake: FakeProviderServer, status: int
) -> None:
    email = _sendgrid(fake.base_url)
    fake.fail_next("/v3/mail/send", status)
    with pytest.raises(TransientDeliveryError, match=str(status)):
        await email.send_email(TO_EMAIL, "Checking in", "Please get in touch.", "k")
    receipt = await email.send_email(TO_EMAIL, "Checking in", "Please get in touch.", "k")
    assert [r.status for r in fake.emails()] == [status, 202]
    assert receipt.provider_id == fake.emails()[1].provider_id


@pytest.mark.parametrize("status", [400, 403, 413])
async def test_sendgrid_client_errors_are_permanent_failures(
    fake: FakeProviderServer, status: int
) -> None:
    fake.fail_next("/v3/mail/send", status)
    with pytest.raises(PermanentDeliveryError) as raised:
        await _sendgrid(fake.base_url).send_email(TO_EMAIL, "Hi", "Body", "k")
    assert raised.value.result == AttemptResult.failed
    _no_phi(raised.value.detail)


async def test_unreachable_sendgrid_is_transient(closed_port_url: str) -> None:
    with pytest.raises(TransientDeliveryError, match="unreachable"):
        await _sendgrid(closed_port_url).send_email(TO_EMAIL, "Hi", "Body", "k")


async def test_sendgrid_that_never_answers_times_out_without_blocking_the_loop(
    stalled_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sendgrid_provider, "REQUEST_TIMEOUT_SECONDS", 0.3)
    send = asyncio.create_task(_sendgrid(stalled_url).send_email(TO_EMAIL, "Hi", "Body", "k"))
    ticks = 0
    while not send.done():
        await asyncio.sleep(0.02)
        ticks += 1
    assert ticks >= 5  # the event loop kept running while the request waited
    with pytest.raises(TransientDeliveryError, match="may have taken the message") as err:
        await send
    assert err.value.may_have_been_sent


# -- The fake validates like the real APIs ---------------------------------------------------------


async def test_fake_rejects_what_the_real_apis_reject(fake: FakeProviderServer) -> None:
    auth = {"Authorization": BASIC_AUTH}
    messages = f"{fake.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    form = {"To": TO_NUMBER, "From": FROM_NUMBER, "Body": "Hi"}
    async with aiohttp.ClientSession() as http:
        async with http.post(messages, data=form) as response:
            assert response.status == 401 and (await response.json())["code"] == 20003
        bad_sid = messages.replace(ACCOUNT_SID, "AC123")
        async with http.post(bad_sid, data=form, headers=auth) as response:
            assert response.status == 404
        async with http.post(messages, data={"From": FROM_NUMBER, "Body": "Hi"}, headers=auth) as r:
            body = await r.json()
            assert r.status == 400 and set(body) == {"code", "message", "more_info", "status"}
        async with http.post(messages, data={"To": TO_NUMBER, "Body": "Hi"}, headers=auth) as r:
            assert r.status == 400
        mail = {"personalizations": [{"to": [{"email": TO_EMAIL}]}], "subject": "s"}
        async with http.post(f"{fake.base_url}/v3/mail/send", json=mail) as response:
            assert response.status == 401
        headers = {"Authorization": f"Bearer {SENDGRID_KEY}"}
        async with http.post(f"{fake.base_url}/v3/mail/send", json=mail, headers=headers) as r:
            assert r.status == 400  # no from
    assert [r.status for r in fake.requests] == [401, 404, 400, 400, 401, 400]
    assert len(fake.sms()) == 4 and len(fake.emails()) == 2 and not fake.calls()


# -- Building providers from settings --------------------------------------------------------------


def test_without_credentials_everything_is_a_dry_run() -> None:
    providers = build_providers(Settings(_env_file=None))
    assert isinstance(providers.sms, DryRunSms)
    assert isinstance(providers.voice, DryRunVoice)
    assert isinstance(providers.email, DryRunEmail)
    assert describe_providers(providers) == "sms=dry-run voice=dry-run email=dry-run"


def test_incomplete_credentials_are_a_dry_run() -> None:
    settings = Settings(
        _env_file=None, twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN
    )
    providers = build_providers(settings)
    assert describe_providers(providers) == "sms=dry-run voice=dry-run email=dry-run"


async def test_credentials_from_the_environment_reach_the_configured_endpoint(
    fake: FakeProviderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
        "TWILIO_API_BASE_URL": fake.base_url,
        "SENDGRID_API_KEY": SENDGRID_KEY,
        "SENDGRID_FROM_EMAIL": FROM_EMAIL,
        "SENDGRID_API_HOST": fake.base_url,
    }.items():
        monkeypatch.setenv(name, value)
    providers = build_providers(Settings(_env_file=None))
    assert isinstance(providers.sms, TwilioSms) and isinstance(providers.voice, TwilioVoice)
    assert isinstance(providers.email, SendGridEmail)
    assert describe_providers(providers) == "sms=twilio voice=twilio email=sendgrid"
    try:
        await providers.sms.send_sms(TO_NUMBER, "Hello")
        await providers.voice.start_call(TO_NUMBER, "Hello")
        await providers.email.send_email(TO_EMAIL, "Hi", "Body", "k")
    finally:
        for provider in (providers.sms, providers.voice):
            if provider._client is not None:
                await provider._client.http_client.close()
    assert [len(fake.sms()), len(fake.calls()), len(fake.emails())] == [1, 1, 1]
    assert fake.sms()[0].form["From"] == FROM_NUMBER


async def test_dry_run_receipts_name_no_address() -> None:
    sms, voice, email = DryRunSms(), DryRunVoice(), DryRunEmail()
    receipts = [
        await sms.send_sms(TO_NUMBER, "Hello"),
        await voice.start_call(TO_NUMBER, "Hello"),
        await email.send_email("jordan.smith@example.org", "Hi", "Body", "k"),
    ]
    assert all(r.dry_run and r.provider_id is None for r in receipts)
    assert [r.detail for r in receipts] == ["dry run: nothing sent"] * 3
    assert not any(TO_NUMBER in r.detail or "jordan" in r.detail for r in receipts)
    outcome = await voice.call_outcome("anything")
    assert outcome is not None and outcome.result == AttemptResult.dry_run
    assert vars(sms) == vars(voice) == vars(email) == {}  # keeps no address, no text


# -- No PHI or secrets in logs -----------------------------------------------------------------


async def test_twilio_requests_log_no_phi_or_secrets(
    fake: FakeProviderServer, twilio: TwilioFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await twilio(TwilioSms, fake.base_url).send_sms(TO_NUMBER, "Hi Alex, call us back.")
    voice = twilio(TwilioVoice, fake.base_url)
    receipt = await voice.start_call(TO_NUMBER, "Hi Alex, call us back.")
    await voice.call_outcome(receipt.provider_id)
    fake.reject_number(TO_NUMBER)
    with pytest.raises(PermanentDeliveryError):
        await voice.start_call(TO_NUMBER, "Hi Alex, call us back.")
    for secret in (TO_NUMBER, "Alex", AUTH_TOKEN, BASIC_AUTH):
        assert secret not in caplog.text


async def test_twilio_library_is_quiet_at_info(
    fake: FakeProviderServer, twilio: TwilioFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await twilio(TwilioSms, fake.base_url).send_sms(TO_NUMBER, "Hello")
    assert not [r.name for r in caplog.records if r.name.startswith("twilio")]


async def test_sendgrid_requests_log_no_phi_or_secrets_even_at_debug(
    fake: FakeProviderServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await _sendgrid(fake.base_url).send_email(TO_EMAIL, "Hi", "Please call Alex back.", "k")
    for secret in (TO_EMAIL, "Please call Alex back", SENDGRID_KEY):
        assert secret not in caplog.text


# -- Retry-After and connection resets, the same for every provider ------------------------------


@pytest.mark.parametrize("retry_after", ["7", "HTTP-DATE"])
async def test_retry_after_is_passed_on_by_every_provider(
    fake: FakeProviderServer, twilio: TwilioFactory, retry_after: str
) -> None:
    header = retry_after
    if retry_after == "HTTP-DATE":
        header = formatdate(time.time() + 7, usegmt=True)
    sms, voice = twilio(TwilioSms, fake.base_url), twilio(TwilioVoice, fake.base_url)
    fake.fail_next("Messages.json", 429, retry_after=header)
    fake.fail_next("Calls.json", 503, retry_after=header)
    fake.fail_next("/v3/mail/send", 429, retry_after=header)
    errors = []
    for send in (
        sms.send_sms(TO_NUMBER, "Hello"),
        voice.start_call(TO_NUMBER, "Hello"),
        _sendgrid(fake.base_url).send_email(TO_EMAIL, "Hi", "Body", "k"),
    ):
        with pytest.raises(TransientDeliveryError) as raised:
            await send
        errors.append(raised.value)
    for error in errors:
        assert error.retry_after is not None and 5 <= error.retry_after <= 7
        assert not error.may_have_been_sent
        _no_phi(str(error))


def test_retry_after_is_capped_and_junk_is_ignored() -> None:
    assert parse_retry_after("86400") == RETRY_AFTER_CAP_SECONDS
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    assert parse_retry_after("-5") == 0.0


async def test_a_connection_reset_may_have_delivered_for_every_provider(
    fake: FakeProviderServer, twilio: TwilioFactory
) -> None:
    sms, voice = twilio(TwilioSms, fake.base_url), twilio(TwilioVoice, fake.base_url)
    for suffix in ("Messages.json", "Calls.json", "/v3/mail/send"):
        fake.reset_next(suffix)
    errors = []
    for send in (
        sms.send_sms(TO_NUMBER, "Hello"),
        voice.start_call(TO_NUMBER, "Hello"),
        _sendgrid(fake.base_url).send_email(TO_EMAIL, "Hi", "Body", "k"),
    ):
        with pytest.raises(TransientDeliveryError) as raised:
            await send
        errors.append(raised.value)
    assert [e.may_have_been_sent for e in errors] == [True, True, True]
    assert all("may have taken the message" in str(e) for e in errors)
    assert len(fake.sms()) == len(fake.calls()) == len(fake.emails()) == 1  # they arrived
