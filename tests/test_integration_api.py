"""The practice systems' API: a bearer token per integration (stored hashed), a no-show opens
the case like the calendar sweep, a check-in and a cancellation answer it, the same event twice
changes nothing twice, and invalid bodies get 422 naming the field."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from models.answers import CaseOutcome
from models.case import Resolution, case_id_for
from service.integrations import IntegrationError, IntegrationService
from settings import Settings
from store.case_store import CaseStore
from store.schema import IntegrationTable
from tests.harness import Harness, harness
from tests.web_support import web_client
from web.app import create_app

EVENTS = "/api/v1/events"


async def _token(h: Harness, name: str = "ehr") -> dict[str, str]:
    token = await IntegrationService(h.service, h.settings).add(name, datetime.now().astimezone())
    return {"Authorization": f"Bearer {token}"}


def _no_show(event_id: str, appointment: str, start: datetime, **more: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "no_show",
        "appointment_id": appointment,
        "client_id": "C1",
        "scheduled_start": start.isoformat(),
        **more,
    }


async def test_a_no_show_opens_the_case_once_and_a_check_in_closes_it_silently(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h, web_client(h) as (client, _):
        auth = await _token(h)
        now = await h.env.get_current_time()
        event = _no_show("ev-1", "EHR-100", now)

        opened = await client.post(EVENTS, json=event, headers=auth)
        again = await client.post(EVENTS, json=event, headers=auth)
        same_fact = await client.post(EVENTS, json={**event, "event_id": "ev-2"}, headers=auth)

        case_id = case_id_for("EHR-100")
        h.started.append(case_id)
        assert opened.status_code == 200
        assert opened.json() == {
            "event_id": "ev-1",
            "result": "opened",
            "case_id": case_id,
            "message": "case opened",
            "repeat": False,
        }
        assert again.json() == {**opened.json(), "repeat": True}
        assert same_fact.json() == {**opened.json(), "event_id": "ev-2", "repeat": True}
        status = await h.status_of(case_id)
        assert [n.text for n in status.notes] == ["Opened by the integration ehr (event ev-1)."]

        check_in = {"event_id": "ev-3", "type": "checked_in", "appointment_id": "EHR-100"}
        arrived = await client.post(EVENTS, json=check_in, headers=auth)
        repeated = await client.post(EVENTS, json=check_in, headers=auth)
        assert arrived.status_code == 200 and arrived.json()["result"] == "answered"
        assert "closed as attended late; nothing was sent" in arrived.json()["message"]
        assert repeated.json() == {**arrived.json(), "repeat": True}
        handle = h.client.get_workflow_handle(case_id, result_type=Resolution)
        resolution = await handle.result()
        assert resolution.outcome is CaseOutcome.attended_late
        assert h.providers.sent == []

        nobody = {"event_id": "ev-4", "type": "checked_in", "appointment_id": "EHR-999"}
        assert (await client.post(EVENTS, json=nobody, headers=auth)).json()["result"] == "no_case"


async def test_a_cancellation_stops_outreach_and_is_told_once(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h, web_client(h) as (client, _):
        auth = await _token(h)
        now = await h.env.get_current_time()
        await client.post(EVENTS, json=_no_show("ev-1", "EHR-200", now), headers=auth)
        case_id = case_id_for("EHR-200")
        h.started.append(case_id)
        moved = (now + timedelta(days=2)).isoformat()
        cancel = {
            "event_id": "ev-2",
            "type": "cancelled",
            "appointment_id": "EHR-200",
            "moved_to": moved,
        }
        first = await client.post(EVENTS, json=cancel, headers=auth)
        second = await client.post(EVENTS, json={**cancel, "event_id": "ev-3"}, headers=auth)
        assert first.status_code == 200 and first.json()["result"] == "answered"
        assert second.json()["repeat"] is True
        handle = h.client.get_workflow_handle(case_id, result_type=Resolution)
        status = await h.awaiting_close_out(handle)  # the therapist told; nothing in flight
        assert status.session_cancelled_at is not None
        assert sum("moved to" in n.text for n in status.notes) == 1
        assert sorted(s.to for s in h.providers.sent) == ["+15555550001", "maya.lin@example.org"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"scheduled_start": None}, "scheduled_start"),
        ({"scheduled_start": "2026-12-01T15:00:00"}, "scheduled_start"),  # no offset
        ({"scheduled_start": "9999-01-01T00:00:00Z"}, "scheduled_start"),
        ({"client_id": "C 1/../x"}, "client_id"),
        ({"appointment_id": "A" * 65}, "appointment_id"),
        ({"event_id": ""}, "event_id"),
        ({"note": "bad\x00note"}, "note"),
        ({"colour": "blue"}, "colour"),
        ({"type": "teleported"}, "type"),
    ],
)
async def test_an_invalid_body_gets_422_naming_the_field_and_opens_nothing(
    time_skipping_env: WorkflowEnvironment,
    sqlite_store: CaseStore,
    change: dict[str, Any],
    field: str,
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h, web_client(h) as (client, _):
        auth = await _token(h)
        body = _no_show("ev-1", "EHR-300", await h.env.get_current_time())
        body = {k: v for k, v in {**body, **change}.items() if v is not None}
        answer = await client.post(EVENTS, json=body, headers=auth)
        assert answer.status_code == 422
        errors = answer.json()["detail"]
        assert any(field in [*map(str, e["loc"]), *e["msg"].split("'")] for e in errors)
        assert await h.store.list_cases(open_only=False) == []


async def test_without_a_valid_token_nothing_happens_and_tokens_are_stored_hashed(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store) as h, web_client(h) as (client, _):
        auth = await _token(h, "ehr")
        token = auth["Authorization"].removeprefix("Bearer ")
        body = _no_show("ev-1", "EHR-400", await h.env.get_current_time())
        for headers in (
            {},
            {"Authorization": "Bearer mso_not-a-token"},
            {"Authorization": f"Basic {token}"},
            {"Authorization": token},
        ):
            answer = await client.post(EVENTS, json=body, headers=headers)
            assert answer.status_code in (401, 403) and token not in answer.text
        assert await h.store.list_cases(open_only=False) == []

        async with sqlite_store._connect() as conn:
            rows = (await conn.execute(select(IntegrationTable))).mappings().all()
        assert [r["token_sha256"] for r in rows] == [hashlib.sha256(token.encode()).hexdigest()]
        assert token not in str([dict(r) for r in rows])

        await IntegrationService(h.service, h.settings).remove("ehr")
        revoked = await client.post(EVENTS, json=body, headers=auth)
        assert revoked.status_code == 401
        with pytest.raises(IntegrationError, match="no such integration"):
            await IntegrationService(h.service, h.settings).remove("ehr")


def test_the_openapi_schema_documents_the_events_and_the_bearer_token() -> None:
    schema = create_app(Settings()).openapi()
    post = schema["paths"]["/api/v1/events"]["post"]
    assert post["security"] == [{"HTTPBearer": []}]
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["discriminator"]["mapping"]) == {"no_show", "checked_in", "cancelled"}
    assert {"NoShowEvent", "CheckInEvent", "CancellationEvent", "EventAnswer"} <= set(
        schema["components"]["schemas"]
    )
    assert {"/twilio/sms", "/twilio/call-status", "/sendgrid/events"} <= set(schema["paths"])
