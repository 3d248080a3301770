"""Fault drill: the case store (PostgreSQL, reached through a TCP proxy the test cuts) is gone
for `DRILL_STORE_OUTAGE_SECONDS` (30 s by default) just as the cases' first texts and emails
reach the provider, which refuses them (429 with Retry-After, 503).

The writes that fall into the outage are retried until the store is back, nothing is left half
written, and each refused message is sent again afterwards and recorded as sent: the provider
said "not taken", so sending it again cannot double it. (Before, the refusal could not be
written down, and the next try recorded it "unconfirmed" and never sent it.)"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from models.case import AttemptResult, Resolution
from models.policy import load_policy
from providers.factory import build_providers
from service.cases import CaseService
from store.case_store import CaseStore
from store.directory_csv import import_directory_csv
from store.schema import AttemptTable
from tests.conftest import PostgresTestDatabase
from tests.drills import provider_settings, until
from tests.fake_provider_server import FakeProviderServer
from tests.harness import REACHED
from tests.tcp_proxy import TcpProxy
from worker import build_worker
from workflows.missed_session import MissedSessionWorkflow

ROOT = Path(__file__).parent.parent
pytestmark = pytest.mark.drill(seconds=50)
OUTAGE_SECONDS = float(os.environ.get("DRILL_STORE_OUTAGE_SECONDS", "30"))
CASES = 3
POLICY = """
name = "outage-drill"
demo = true
grace = "2s"
emergency_contact_channels = ["sms"]
emergency_contact_wait = "2s"
therapist_channels = ["email"]
therapist_reminder_every = "1h"
therapist_max_reminders = 1
supervisor_after = "2h"
supervisor_renotify_every = "2h"
message_retry_for = "10m"
quiet_hours = { enabled = false }
client_rounds_before_emergency_contact = { standard = 1, elevated = 1, high = 1 }
[[rounds]]
channels = ["sms", "email"]
then_wait = "2s"
"""


async def test_the_store_gone_for_30_s_loses_nothing_and_refused_messages_go_out_after(
    dev_server: WorkflowEnvironment, tmp_path: Path
) -> None:
    database = PostgresTestDatabase()
    await database.create()
    policy_file = tmp_path / "drill.toml"
    policy_file.write_text(POLICY)
    async with TcpProxy("127.0.0.1", make_url(database.url).port or 5432) as proxy:
        url = make_url(database.url).set(host="127.0.0.1", port=proxy.port)
        store = CaseStore.from_url(url.render_as_string(hide_password=False))
        try:
            await store.create_schema()
            await import_directory_csv(store, ROOT / "samples" / "directory.csv")
            resolutions, fake = await _run_cases(dev_server.client, store, proxy, policy_file)
            rows = await store._all(select(AttemptTable))  # every row, whatever its state
        finally:
            await store.close()
            await database.drop()

    creates = [
        r
        for r in fake.requests
        if r.method == "POST" and r.path.endswith(("Messages.json", "/mail/send"))
    ]
    refused = [r for r in creates if r.status in (429, 503)]
    taken = [r for r in creates if 200 <= r.status < 300]
    # Each case's first text and email were refused while the store went away ...
    assert len(refused) == 2 * CASES, [(r.path, r.status) for r in creates]
    assert all(r.fault is None for r in creates)
    # ... and went out once the store was back: recorded sent, none unconfirmed, none doubled.
    attempts = [a for resolution in resolutions for a in resolution.attempts]
    assert [a for a in attempts if a.result is AttemptResult.unconfirmed] == []
    sent = [a for a in attempts if a.result is AttemptResult.sent]
    assert len(sent) == len(taken) and len({a.provider_id for a in sent}) == len(sent)
    assert {a.provider_id for a in sent} == {r.provider_id for r in taken}
    first_round = Counter(a.step for a in sent if "/1/" in a.step)
    assert sum(first_round.values()) == 2 * CASES
    # Nothing half written: every attempt row is final and agrees with its case's resolution.
    assert {row["state"] for row in rows} == {"done"}
    assert sorted((r["key"], r["result"]) for r in rows) == sorted(
        (f"{r.case_id}/{a.step}", a.result.value) for r in resolutions for a in r.attempts
    )
    assert all(r.outcome.value == "reached_safe" for r in resolutions)


async def _run_cases(
    client: Client, store: CaseStore, proxy: TcpProxy, policy_file: Path
) -> tuple[list[Resolution], FakeProviderServer]:
    async with FakeProviderServer() as fake:
        settings = provider_settings(fake, temporal_task_queue=f"outage-{uuid.uuid4().hex[:8]}")
        # The first text and email of every case: held 2 s, then refused. The store goes
        # away as the first of them arrives, before any refusal is answered.
        fake.fail_next("Messages.json", 429, times=CASES, retry_after="1")
        fake.fail_next("/mail/send", 503, times=CASES)
        fake.delay_next("Messages.json", 2.0, times=CASES)
        fake.delay_next("/mail/send", 2.0, times=CASES)
        service = CaseService(store, settings, client)
        providers = build_providers(settings)
        try:
            async with build_worker(client, settings, store, providers):
                now = datetime.now(UTC)
                opened = [
                    await service.open(
                        appointment_id=f"S{n}{uuid.uuid4().hex[:8]}",
                        client_id="C100",
                        scheduled_start=now,
                        policy=load_policy(policy_file),
                        now=now,
                    )
                    for n in range(CASES)
                ]

                async def outreach_began() -> bool:
                    return bool(fake.sms() or fake.emails())

                await until(outreach_began, "the first message reached the provider", 60)
                await proxy.stop()
                await asyncio.sleep(OUTAGE_SECONDS)
                await proxy.start()

                async def all_asked() -> bool:
                    for case in opened:
                        handle = client.get_workflow_handle(case.case_id)
                        status = await handle.query(MissedSessionWorkflow.case_status)
                        if status.therapist_asked_at is None:
                            return False
                    return True

                await until(
                    all_asked, "every case asked its therapist", 120, ask_again_on=(RPCError,)
                )
                close_out = {**REACHED.model_dump(mode="json"), "by": "T100"}
                for case in opened:
                    await asyncio.wait_for(service.close_out(case.case_id, close_out), 30)
                resolutions = [
                    await asyncio.wait_for(
                        client.get_workflow_handle(c.case_id, result_type=Resolution).result(),
                        60,
                    )
                    for c in opened
                ]
        finally:
            await providers.aclose()
    return resolutions, fake
