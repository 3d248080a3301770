"""SendGrid's signed event webhook: a bounce, a drop or a spam report fails the email's attempt
(found by the X-Message-Id SendGrid returned) and retires the address, which later cases skip,
saying why; unsigned, tampered, stale and replayed batches get 403 and change nothing."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from temporalio.testing import WorkflowEnvironment

from models.case import AttemptResult, Stage
from models.directory import Channel
from store.case_store import CaseStore
from tests.harness import Harness, harness
from tests.web_support import SendGridSigner, web_client

EVENTS = "/sendgrid/events"
EMAIL = "alex@example.org"  # client C1's
SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"


async def _email_attempt(h: Harness, case_id: str) -> Any:
    for _ in range(500):
        attempts = [a for a in (await h.status_of(case_id)).attempts if a.channel is Channel.email]
        if attempts:
            return attempts[0]
        await asyncio.sleep(0.01)
    raise AssertionError("no email attempt")


def _batch(message_id: str, kind: str = "bounce") -> bytes:
    events = [
        {"email": EMAIL, "event": "processed", "sg_message_id": f"{message_id}.filter0001.1.0"},
        {
            "email": EMAIL,
            "timestamp": int(time.time()),
            "event": kind,
            "sg_event_id": "ZmFrZS1ldmVudA",
            "sg_message_id": f"{message_id}.filter0001.16648.5515E0B88.0",
            "outreach_key": "whatever",
        },
    ]
    if kind == "bounce":
        events[1] |= {
            "type": "bounce",
            "status": "5.1.1",
            "reason": f"550 5.1.1 <{EMAIL}>: user unknown",
        }
    return json.dumps(events).encode()


async def test_a_bounce_fails_the_attempt_and_later_cases_skip_the_address(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    signer = SendGridSigner()
    async with harness(time_skipping_env, sqlite_store) as h, web_client(h, signer) as (client, _):
        first = await h.start("C1")
        await h.round_one_sent(first)
        await h.attempts_recorded(first.id, 3)
        sent = await _email_attempt(h, first.id)
        assert sent.result is AttemptResult.sent and sent.provider_id

        body = _batch(sent.provider_id)
        answer = await client.post(EVENTS, content=body, headers=signer.headers(body))

        assert answer.status_code == 204
        row = await h.store.get_attempt(f"{first.id}/{sent.step}")
        assert row is not None and row.result is AttemptResult.failed
        assert "bounced (SendGrid bounce, status 5.1.1)" in row.detail and EMAIL not in row.detail
        assert await h.store.email_suppression(EMAIL) == "SendGrid bounce, status 5.1.1"
        notes = [n.text for n in (await h.status(first)).notes]
        assert any("client/1/email" in n and "bounced" in n for n in notes)

        # A later case records the email as not sent, and says why; nothing is emailed.
        emailed = len([s for s in h.providers.sent if s.channel == "email"])
        second = await h.start("C1")
        await h.advance_to(second, Stage.contacting_client.value)
        skipped = await _email_attempt(h, second.id)
        assert skipped.result is AttemptResult.invalid_recipient
        assert skipped.detail == "email address not used: SendGrid bounce, status 5.1.1"
        assert len([s for s in h.providers.sent if s.channel == "email"]) == emailed
        await h.attempts_recorded(second.id, 3)


async def test_unsigned_tampered_stale_and_replayed_batches_get_403_and_change_nothing(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    signer, stranger = SendGridSigner(), SendGridSigner()
    async with harness(time_skipping_env, sqlite_store) as h, web_client(h, signer) as (client, _):
        body = _batch("msg-1", "spamreport")
        headers = signer.headers(body)
        tampered = body.replace(b"spamreport", b"delivered!")
        stale = signer.headers(body, timestamp=int(time.time()) - 2 * 86400)
        future = signer.headers(body, timestamp=int(time.time()) + 3600)
        refused = [
            await client.post(EVENTS, content=body, headers={"Content-Type": "application/json"}),
            await client.post(EVENTS, content=tampered, headers=headers),
            await client.post(EVENTS, content=body, headers=stranger.headers(body)),
            await client.post(EVENTS, content=body, headers=stale),
            await client.post(EVENTS, content=body, headers=future),
            await client.post(EVENTS, content=body, headers={**headers, SIGNATURE: "bm90IGEgc2ln"}),
        ]
        assert [r.status_code for r in refused] == [403] * 6
        assert await h.store.email_suppression(EMAIL) is None

        accepted = await client.post(EVENTS, content=body, headers=headers)
        assert accepted.status_code == 204
        assert await h.store.email_suppression(EMAIL) == "SendGrid spamreport"
        replayed = await client.post(EVENTS, content=body, headers=headers)
        assert replayed.status_code == 403


async def test_without_a_verification_key_every_batch_is_refused(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    signer = SendGridSigner()
    async with harness(time_skipping_env, sqlite_store) as h, web_client(h) as (client, _):
        body = _batch("msg-2")
        answer = await client.post(EVENTS, content=body, headers=signer.headers(body))
    assert answer.status_code == 403
    assert await sqlite_store.email_suppression(EMAIL) is None
