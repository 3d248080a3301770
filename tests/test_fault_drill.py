"""Fault drill: many cases at once against a Twilio/SendGrid-compatible endpoint that fails at a
rate (429 with Retry-After, 500, 503, connection resets, answers slower than the client waits,
Twilio's permanent errors), through the official clients, on the real dev server.

Every case must reach its therapist (or a documented dead end), and the endpoint's log must
agree with the case store: every message the endpoint took is recorded, once; none doubled.
Each case's client and emergency contact have addresses of their own, so the endpoint's log is
checked address by address (an email also by its attempt's key): a step sent twice shows up
there even where the store recorded it once. `DRILL_CASES` sets the number of cases: 200 in
`make test` (about 70 s on 2 cores), fewer for a quick run."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import itertools
import os
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from models.answers import CaseOutcome
from models.case import Attempt, AttemptResult, CaseStatus, RecipientRole, Resolution, Stage
from models.directory import ClientProfile, Therapist
from models.policy import load_policy
from providers import sendgrid_provider, twilio_provider
from providers.base import TransientDeliveryError
from providers.factory import build_providers
from service.cases import CaseService
from store.case_store import CaseStore
from store.directory_csv import parse_directory_csv
from tests import directory_data
from tests.drills import provider_settings, until
from tests.fake_provider_server import Chaos, FakeProviderServer, RecordedRequest
from tests.harness import REACHED, Harness
from worker import build_worker
from workflows.missed_session import MissedSessionWorkflow

ROOT = Path(__file__).parent.parent
pytestmark = pytest.mark.drill(seconds=90)
CASES = int(os.environ.get("DRILL_CASES", "200"))
TAKEN = frozenset({"sent", "answered", "voicemail", "no_answer", "busy"})
unconfirmed_result = AttemptResult.unconfirmed


async def test_at_a_mixed_fault_rate_every_message_is_recorded_once_and_none_doubled(
    dev_server: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(twilio_provider, "REQUEST_TIMEOUT_SECONDS", 1.0)
    monkeypatch.setattr(sendgrid_provider, "REQUEST_TIMEOUT_SECONDS", 1.0)
    store = CaseStore.from_url(f"sqlite+aiosqlite:///{tmp_path}/cases.db")
    await store.create_schema()
    therapists, clients = _one_client_per_case(CASES)
    await store.import_directory(therapists, clients)
    async with FakeProviderServer() as fake:
        fake.chaos = Chaos(rate=0.25, seed=13, slow_seconds=2.0)
        # Two refusals that name a wait longer than the retry policy's own first one (5 s).
        fake.fail_next("/v3/mail/send", 429, times=2, retry_after="10")
        settings = provider_settings(
            fake,
            temporal_task_queue=f"drill-{uuid.uuid4().hex[:8]}",
            call_poll_interval_seconds=0.2,
        )
        client: Client = dev_server.client
        service = CaseService(store, settings, client)
        policy = load_policy(ROOT / "policies" / "demo.toml")
        providers = build_providers(settings)
        try:
            async with build_worker(client, settings, store, providers):
                now = datetime.now(UTC)
                opened = await asyncio.gather(
                    *(
                        service.open(
                            appointment_id=f"D{n:03d}{uuid.uuid4().hex[:6]}",
                            client_id=clients[n].client_id,
                            scheduled_start=now,
                            policy=policy,
                            now=now,
                        )
                        for n in range(CASES)
                    )
                )
                waiting: dict[str, CaseStatus] = {}

                async def all_asked() -> bool:
                    for o in opened:
                        if o.case_id not in waiting:
                            handle = client.get_workflow_handle(o.case_id)
                            try:
                                status = await handle.query(MissedSessionWorkflow.case_status)
                            except RPCError:  # a loaded server: ask again next time
                                continue
                            if status.therapist_asked_at is not None:
                                waiting[o.case_id] = status
                    return len(waiting) == len(opened)

                await until(all_asked, "every case asked its therapist", 240, every=0.5)
                close_out = {**REACHED.model_dump(mode="json"), "by": "T100"}
                await asyncio.gather(*(service.close_out(o.case_id, close_out) for o in opened))
                resolutions = await asyncio.gather(
                    *(
                        client.get_workflow_handle(o.case_id, result_type=Resolution).result()
                        for o in opened
                    )
                )
        finally:
            await providers.aclose()
        per_case = [
            (o.case_id, a) for o in opened for a in await store.attempts_for_case(o.case_id)
        ]
        attempts = [a for _, a in per_case]
    await store.close()

    creates = [r for r in fake.requests if r.method == "POST" and "Accounts" in r.path] + [
        r for r in fake.emails()
    ]
    creates = [r for r in creates if not r.path.endswith(".json") or "/Calls/" not in r.path]
    taken = [r for r in creates if 200 <= r.status < 300 and r.provider_id]
    faults = Counter(r.fault for r in creates if r.fault)
    recorded = Counter(a.provider_id for a in attempts if a.provider_id)

    assert len(resolutions) == CASES and all(
        s.stage is Stage.awaiting_therapist for s in waiting.values()
    )
    assert {"429", "500", "503", "reset", "slow"} <= set(faults), faults  # the mix happened
    # None doubled: no provider id recorded twice, and every message the endpoint took is a
    # recorded attempt, except those whose answer never reached the worker (it came too late,
    # or the close-out cancelled the request in flight): each of those is an attempt recorded
    # `unconfirmed`, saying why, and never sent again.
    assert max(recorded.values()) == 1
    unrecorded = [r for r in taken if r.provider_id not in recorded]
    unconfirmed = [a for a in attempts if a.result is AttemptResult.unconfirmed]
    assert len(unrecorded) <= len(unconfirmed), (len(unrecorded), len(unconfirmed))
    why = (
        "may have taken the message",  # the answer came too late, or the connection broke
        "the case closed while the message was handed",  # the close-out cut the request off
        "interrupted mid-send",  # a try timed out by Temporal on a loaded machine
        "it may have gone out",  # finished at close-out, its try cut off
    )
    assert all(any(reason in a.detail for reason in why) for a in unconfirmed), [
        a.detail for a in unconfirmed
    ]
    assert any(r.fault == "slow" for r in unrecorded)  # the slow answers were among them
    # None missing: every attempt recorded as delivered names a message the endpoint took.
    taken_ids = {r.provider_id for r in taken}
    delivered = [a for a in attempts if a.result.value in TAKEN]
    assert delivered and all(a.provider_id in taken_ids for a in delivered)
    # Address by address (each client and contact has their own; the staff's are shared): the
    # endpoint took at least the messages the store recorded delivered there and at most those
    # plus its unconfirmed ones; an email at most once per attempt key. A step sent twice
    # fails here even where the store recorded it once.
    where = _where(clients, {o.case_id: clients[n] for n, o in enumerate(opened)})
    took = Counter(where.request(r) for r in taken)
    delivered = Counter(where.attempt(c, a) for c, a in per_case if a.result.value in TAKEN)
    maybe = Counter(where.attempt(c, a) for c, a in per_case if a.result is unconfirmed_result)
    for address in took.keys() | delivered.keys():
        low, high = delivered[address], delivered[address] + maybe[address]
        assert low <= took[address] <= high, (address, took[address], low, high)
    assert len(took) > 2 * CASES  # the client's and the contact's addresses, case by case
    keys = Counter(_email_key(r) for r in taken if r.path == "/v3/mail/send")
    assert keys and max(keys.values()) == 1, keys.most_common(3)
    # Retry-After is honoured: an email refused with 429 and "Retry-After: 10" is tried again
    # no sooner than 10 s later (the retry policy alone would try again after 5 s).
    gaps = _retry_gaps(fake.emails(), 429)
    assert gaps and all(gap >= 10.0 for gap in gaps), gaps
    # One attempt per step per case, and the store agrees with each resolution.
    for resolution in resolutions:
        steps = [a.step for a in resolution.attempts]
        assert len(steps) == len(set(steps))
        assert all(a.result is not None for a in resolution.attempts)


def _one_client_per_case(cases: int) -> tuple[list[Therapist], list[ClientProfile]]:
    """The sample directory's therapists, and for each case a client of its own: three in four
    like C100 (every channel, an emergency contact who consented), one in four like C200 (no
    calls, high risk, a contact without consent), each with their own phone and email."""
    therapists, samples = parse_directory_csv(ROOT / "samples" / "directory.csv")
    by_id = {c.client_id: c for c in samples}
    clients = []
    for n in range(cases):
        base = by_id["C100" if n % 4 else "C200"]
        contact = base.emergency_contact
        if contact is not None:
            contact = contact.model_copy(
                update={
                    "phone": f"+1555557{n:04d}",
                    "email": f"contact{n}@example.org" if contact.email else None,
                }
            )
        changes = {
            "client_id": f"D{n:04d}",
            "phone": f"+1555556{n:04d}",
            "email": f"client{n}@example.org",
            "emergency_contact": contact,
        }
        clients.append(base.model_copy(update=changes))
    return therapists, clients


@dataclasses.dataclass
class _where:
    """Where a message went, as (channel, address): the client's and the contact's own
    addresses, or ("staff", channel) for the therapist, supervisor and on-call (shared)."""

    clients: list[ClientProfile]
    client_of: dict[str, ClientProfile]

    @functools.cached_property
    def _own(self) -> set[str]:
        own = set()
        for c in self.clients:
            own |= {c.phone or "", c.email or ""}
            if c.emergency_contact is not None:
                ec = c.emergency_contact
                own |= {ec.phone or "", ec.email or ""}
        return own - {""}

    def request(self, r: RecordedRequest) -> tuple[str, str]:
        if r.path == "/v3/mail/send":
            channel, to = "email", (r.json or {})["personalizations"][0]["to"][0]["email"]
        else:
            channel, to = ("voice" if r.path.endswith("/Calls.json") else "sms"), r.form["To"]
        return (channel, to) if to in self._own else ("staff", channel)

    def attempt(self, case_id: str, a: Attempt) -> tuple[str, str]:
        channel = a.channel.value
        if a.recipient_role is RecipientRole.client:
            person: Any = self.client_of[case_id]
        elif a.recipient_role is RecipientRole.emergency_contact:
            person = self.client_of[case_id].emergency_contact
        else:
            return ("staff", channel)
        return (channel, person.email if channel == "email" else person.phone)


def _email_key(email: RecordedRequest) -> str | None:
    return (email.json or {}).get("custom_args", {}).get("outreach_key")


def _retry_gaps(emails: list[RecordedRequest], status: int) -> list[float]:
    """Seconds from each email answered `status` to the next try of the same message (the
    attempt's key travels in SendGrid's custom_args)."""
    by_key: dict[str, list[RecordedRequest]] = {}
    for email in emails:
        if key := _email_key(email):
            by_key.setdefault(key, []).append(email)
    return [
        later.at - earlier.at
        for tries in by_key.values()
        for earlier, later in itertools.pairwise(tries)
        if earlier.status == status and earlier.fault is None  # scripted, not chaos
    ]


class _RefusesOnceTheCaseCloses:
    """An SMS provider that holds the first text until told, then refuses it (a 429)."""

    def __init__(self) -> None:
        self.arrived, self.release = asyncio.Event(), asyncio.Event()

    async def send_sms(self, to: str, body: str) -> Any:
        self.arrived.set()
        await self.release.wait()
        raise TransientDeliveryError("sms provider answered 429")


async def test_a_text_refused_just_as_the_case_closes_neither_fails_the_case_nor_stays_open(
    dev_server: WorkflowEnvironment, tmp_path: Path
) -> None:
    """The close-out cancels a text in flight; the provider then refuses it. The try ends as a
    failure, not a cancellation (it never heard the cancel): the case closes all the same
    (it used to fail), and the attempt is finished at close-out as not sent."""
    store = CaseStore.from_url(f"sqlite+aiosqlite:///{tmp_path}/cases.db")
    await store.create_schema()
    await store.import_directory(directory_data.THERAPISTS, directory_data.CLIENTS)
    sms = _RefusesOnceTheCaseCloses()
    h = Harness(dev_server, store)  # the real server: it ends such a try as a failure
    bundle = dataclasses.replace(h.providers.bundle(), sms=sms)
    worker = build_worker(h.client, h.settings, store, bundle, task_queue=h.task_queue)
    try:
        async with worker:
            handle = await h.start("C1", policy=load_policy(ROOT / "policies" / "demo.toml"))
            await asyncio.wait_for(sms.arrived.wait(), 30)
            await h.answer(handle, "client_reached", **REACHED.model_dump(mode="json"))
            sms.release.set()
            resolution = await asyncio.wait_for(handle.result(), 60)
    finally:
        await h.terminate_leftovers()
        await store.close()

    assert resolution.outcome is CaseOutcome.reached_safe
    texts = [a for a in resolution.attempts if a.channel == "sms"]
    assert [(a.result, a.provider_id) for a in texts] == [(AttemptResult.failed, None)]
    assert "the provider had refused it, nothing went out" in texts[0].detail
