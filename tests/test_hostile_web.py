"""Hostile requests to the web service: the close-out and client pages' forms, the practice
systems' API, the Twilio and SendGrid webhooks (signed, with hostile fields), the codec server.

Every answer is a 4xx with a clear message (or what a valid request gets), never a 500 or a
traceback; a 422 names the fields and never echoes what was sent; a page that refuses a form
sends nothing to the case. Temporal is a recording fake here: what reaches it must pass the
workflow's own validator.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import SecretStr

from models.case import CaseStatus, RecipientRole, Resolution, Stage
from models.edge import at_edge
from models.outreach import OpenCaseRequest
from service.cases import ANSWERS, CaseService, case_id_of
from service.integrations import IntegrationService
from service.page_links import page_links
from settings import Settings
from store.case_store import CaseStore
from store.errors import StoreError
from tests import directory_data
from tests.hostile import (
    FAST,
    RecordingTemporal,
    hostile_text,
    json_values,
    on_loop,
    run_property,
)
from tests.web_support import (
    ACCOUNT,
    TWILIO_TOKEN,
    SendGridSigner,
    hook_settings,
    hooks_app,
    sms_params,
    twilio_signature,
)
from web.app import create_app
from web.context import WebContext
from web.pages import PageDeps

BASE = "http://127.0.0.1:8000"
CASE_ID = "missed-session-A1"
ALLOWED = {200, 204, 400, 401, 403, 404, 409, 410, 413, 415, 422, 503}


class _OfflineCases(CaseService):
    """The case service over a real store, with Temporal replaced by a recording fake and the
    case's live status fixed (open, awaiting the therapist)."""

    def __init__(self, store: CaseStore, settings: Settings) -> None:
        self.temporal_fake = RecordingTemporal()
        super().__init__(store, settings, self.temporal_fake)  # type: ignore[arg-type]

    async def status(self, reference: str) -> Resolution | CaseStatus:
        case_id = case_id_of(reference)
        return CaseStatus(
            case_id=case_id,
            appointment_id=case_id.removeprefix("missed-session-"),
            stage=Stage.awaiting_therapist,
            stage_since=datetime.now(UTC),
        )


def _no_500(answer: httpx.Response) -> None:
    assert answer.status_code in ALLOWED, (answer.status_code, answer.text[:500])
    assert "Traceback" not in answer.text and 'File "' not in answer.text


def _leaves(value: Any) -> list[str]:
    """The text values (not keys) a JSON value holds, long enough to be recognisable."""
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    if isinstance(value, str) and len(value.strip()) >= 4:
        return [value]
    return []


@pytest.fixture
async def pages(sqlite_store: CaseStore) -> AsyncIterator[tuple[httpx.AsyncClient, Any, str]]:
    """The pages of one open case (C1, therapist T1) and the therapist's and client's links."""
    await sqlite_store.import_directory(directory_data.THERAPISTS, directory_data.CLIENTS)
    now = datetime.now(UTC)
    await sqlite_store.open_case(
        OpenCaseRequest(
            case_id=CASE_ID,
            appointment_id="A1",
            client_id="C1",
            therapist_id="T1",
            scheduled_start=now - timedelta(hours=1),
            policy_name="standard",
            opened_at=now - timedelta(hours=1),
        )
    )
    settings = Settings(
        link_secret=SecretStr("test-link-secret-0123456789"),
        public_base_url=BASE,
        message_links="always",
    )
    cases = _OfflineCases(sqlite_store, settings)
    links = page_links(settings)
    app = create_app(settings, PageDeps(cases, links, settings))
    staff = links.url(CASE_ID, RecipientRole.therapist, "T1", now)
    client = links.url(CASE_ID, RecipientRole.client, "C1", now)
    assert staff and client
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as web:
        yield web, cases.temporal_fake, staff.removeprefix(BASE) + "|" + client.removeprefix(BASE)


FORM_FIELDS = ["outcome", "note", "follow_up_plan", "materials", "fee_decision", "fee_reason"]
GOOD_FORM = {
    "outcome": "reached_safe",
    "note": "Spoke with the client.",
    "follow_up_plan": "Keep next week's session.",
    "materials": "",
    "fee_decision": "waive",
    "fee_reason": "first miss",
}


@st.composite
def close_out_forms(draw: st.DrawFn) -> tuple[dict[str, str], dict[str, Any]]:
    form = dict(GOOD_FORM)
    for name in draw(st.lists(st.sampled_from([*FORM_FIELDS, "by", "case_id", "x"]), max_size=4)):
        form[name] = draw(hostile_text)
    files: dict[str, Any] = {}
    if draw(st.integers(0, 7)) == 0:
        files[draw(st.sampled_from(FORM_FIELDS))] = ("note.txt", b"a file\x00", "text/plain")
    return form, files


async def test_hostile_close_out_and_client_forms_are_refused_beside_their_fields(
    pages: tuple[httpx.AsyncClient, RecordingTemporal, str],
) -> None:
    web, temporal, links = pages
    staff, client = links.split("|")
    loop = asyncio.get_running_loop()

    async def close_out(form: dict[str, str], files: dict[str, Any]) -> None:
        before = len(temporal.sent)
        answer = await web.post(staff, data=form, files=files or None)
        _no_500(answer)
        if answer.status_code != 200:
            assert len(temporal.sent) == before, "a refused form reached the case"
            return
        assert not files, "a file was taken as a form field's text"
        update, payload = temporal.sent[-1]
        assert update == "client_reached" and payload["by"] == "T1"  # the link's holder
        at_edge(ANSWERS[update], payload)
        assert payload["note"] == form["note"].strip()  # what was typed, nothing else

    async def client_answer(intent: str) -> None:
        _no_500(await web.post(client, data={"intent": intent}))

    @FAST
    @given(close_out_forms(), hostile_text)
    @example(({**GOOD_FORM}, {"note": ("n.txt", b"x", "text/plain")}), "ok")  # found: str(file)
    @example(({**GOOD_FORM, "by": "S1", "note": "x\x00"}, {}), "call_me\n")
    def prop(case: tuple[dict[str, str], dict[str, Any]], intent: str) -> None:
        on_loop(loop, close_out(*case))
        on_loop(loop, client_answer(intent))

    await run_property(prop)

    # A raw body that is no form at all, and links that are not links.
    for body, kind in (
        (b"\xff\xfe=\x00&&=", "application/x-www-form-urlencoded"),
        (b"--x\r\nContent-Disposition: form-data\r\n\r\n", "multipart/form-data; boundary=x"),
        (b"{}", "multipart/form-data"),
    ):
        _no_500(await web.post(staff, content=body, headers={"content-type": kind}))
    for path in ("/case/" + "A" * 5000, "/case/%00", "/r/..%2F..", "/case/\u202e", "/r/"):
        _no_500(await web.get(path))
        _no_500(await web.post(path, data=GOOD_FORM))


# ---------------------------------------------------------------------- the API and the webhooks
@pytest.fixture
async def hooks(
    sqlite_store: CaseStore,
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str], SendGridSigner]]:
    signer = SendGridSigner()
    settings = hook_settings(Settings(), signer)
    cases = _OfflineCases(sqlite_store, settings)
    token = await IntegrationService(cases, settings).add("ehr", datetime.now(UTC))
    transport = httpx.ASGITransport(app=hooks_app(WebContext(settings, cases)))
    async with httpx.AsyncClient(transport=transport, base_url="http://internal:8000") as client:
        yield client, {"Authorization": f"Bearer {token}"}, signer


EVENT_KEYS = [
    "event_id",
    "type",
    "appointment_id",
    "client_id",
    "scheduled_start",
    "therapist_id",
    "moved_to",
    "note",
]
EVENT_VALUES = st.one_of(
    json_values, st.sampled_from(["no_show", "checked_in", "cancelled", "e-1", "A1", "C1"])
)


@st.composite
def event_bodies(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 5)) == 0:
        return draw(json_values)
    return draw(
        st.dictionaries(st.sampled_from(EVENT_KEYS) | hostile_text, EVENT_VALUES, max_size=7)
    )


async def test_hostile_api_events_get_a_4xx_that_names_fields_and_echoes_nothing(
    hooks: tuple[httpx.AsyncClient, dict[str, str], SendGridSigner],
) -> None:
    client, auth, _ = hooks
    loop = asyncio.get_running_loop()

    async def check(body: Any) -> None:
        answer = await client.post(  # NaN and Infinity too, as Python's json writes them
            "/api/v1/events",
            content=json.dumps(body).encode(),
            headers={**auth, "content-type": "application/json"},
        )
        _no_500(answer)
        if answer.status_code != 422:
            return
        detail = answer.json()["detail"]
        assert detail and all(set(e) == {"loc", "msg", "type"} for e in detail), detail
        shown = json.dumps([[e["msg"], e["type"]] for e in detail])
        for leaf in _leaves(body):
            if leaf not in ("no_show", "checked_in", "cancelled"):
                assert leaf not in shown and json.dumps(leaf)[1:-1] not in shown, (leaf, detail)

    @FAST
    @given(event_bodies())
    @example({"type": "Zebediah Quartermaine", "event_id": "e1"})  # found: the tag was quoted
    @example({"type": ["Zebediah Quartermaine"]})
    @example({"event_id": "no_show", "type": float("inf")})
    @example(
        {
            "type": "no_show",
            "event_id": "e 1",
            "appointment_id": "A1",
            "client_id": "C1",
            "scheduled_start": "9999-12-31T23:59:59Z",
            "note": "Zebediah\x00",
        }
    )
    def prop(body: Any) -> None:
        on_loop(loop, check(body))

    await run_property(prop)
    for raw in (b"not json Zebediah", b"\xff\xfe", b"[" * 5000, b'{"type": "no_show"' * 1000):
        answer = await client.post(
            "/api/v1/events", content=raw, headers={**auth, "content-type": "application/json"}
        )
        _no_500(answer)
        assert b"Zebediah" not in answer.content


async def test_hostile_signed_webhooks_never_get_a_500(
    hooks: tuple[httpx.AsyncClient, dict[str, str], SendGridSigner],
) -> None:
    client, _, signer = hooks
    loop = asyncio.get_running_loop()
    texts = st.text(max_size=30) | hostile_text

    async def twilio(path: str, params: dict[str, str]) -> None:
        headers = {"X-Twilio-Signature": twilio_signature(path, params, TWILIO_TOKEN)}
        _no_500(await client.post(path, data=params, headers=headers))

    async def sendgrid(events: Any) -> None:
        body = json.dumps(events).encode()
        _no_500(await client.post("/sendgrid/events", content=body, headers=signer.headers(body)))

    @FAST
    @given(
        st.dictionaries(
            st.sampled_from(["MessageSid", "From", "Body", "AccountSid", "To", "NumMedia"]),
            texts,
        ),
        st.dictionaries(st.sampled_from(["CallSid", "CallStatus", "AnsweredBy"]), texts),
        st.lists(
            st.dictionaries(
                st.sampled_from(["event", "email", "sg_message_id", "type", "status"]) | texts,
                json_values | st.sampled_from(["bounce", "dropped", "spamreport"]),
            )
            | json_values,
            max_size=3,
        )
        | json_values,
    )
    @example({**sms_params("SM" + "a" * 32, "+15555550101", "STOP\x00")}, {}, [])
    @example({}, {"CallSid": "CA1\n", "CallStatus": "completed"}, [{"event": "bounce"}])
    @example({}, {}, [{"event": []}])  # found: an unhashable event type was a 500
    @example({}, {}, [{"event": "bounce", "email": "a" * 200 + "@" + "b" * 200}])
    def prop(sms: dict[str, str], call: dict[str, str], events: Any) -> None:
        on_loop(loop, twilio("/twilio/sms", {**sms_params("SM1", "+15555550999", "hi"), **sms}))
        on_loop(loop, twilio("/twilio/call-status", {"AccountSid": ACCOUNT, **call}))
        on_loop(loop, sendgrid(events))

    await run_property(prop)


async def test_a_hostile_codec_request_is_a_4xx() -> None:
    token = "codec-token-0123456789"
    settings = Settings(
        payload_keys=SecretStr(f"k1={base64.b64encode(os.urandom(32)).decode()}"),
        codec_server_token=SecretStr(token),
    )
    auth = {"Authorization": f"Bearer {token}"}
    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    bodies: list[bytes] = [
        b"\xff\xfe",
        b"not json",
        b'{"payloads": 5}',
        json.dumps({"payloads": [{"metadata": {"encoding": b64(b"binary/encrypted")}}]}).encode(),
        json.dumps(
            {
                "payloads": [
                    {
                        "metadata": {
                            "encoding": b64(b"binary/encrypted"),
                            "encryption-key-id": b64(b"\xff\xfe"),
                        },
                        "data": b64(b"x" * 50),
                    }
                ]
            }
        ).encode(),
        json.dumps({"payloads": [{"data": "not base64!"}]}).encode(),
    ]
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://codec.test") as client:
        for body in bodies:
            for path in ("/codec/decode", "/codec/encode"):
                answer = await client.post(path, content=body, headers=auth)
                _no_500(answer)


async def test_a_failing_case_store_is_503_not_a_traceback(
    hooks: tuple[httpx.AsyncClient, dict[str, str], SendGridSigner],
    sqlite_store: CaseStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, auth, signer = hooks

    async def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise StoreError("case store unreachable (ConnectionRefusedError)")

    for method in ("has_receipt", "get_case", "claim_event", "integration_for_token"):
        monkeypatch.setattr(sqlite_store, method, unreachable)
    params = {"CallSid": "CA" + "1" * 32, "CallStatus": "completed", "AccountSid": ACCOUNT}
    headers = {"X-Twilio-Signature": twilio_signature("/twilio/call-status", params, TWILIO_TOKEN)}
    body = b"[]"
    answers = [
        await client.post("/twilio/call-status", data=params, headers=headers),
        await client.post("/sendgrid/events", content=body, headers=signer.headers(body)),
        await client.post("/api/v1/events", json={"event_id": "e"}, headers=auth),
    ]
    for answer in answers:
        assert answer.status_code == 503, (answer.status_code, answer.text)
        assert answer.json() == {"detail": "case store unavailable"}
