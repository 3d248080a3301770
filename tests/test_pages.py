"""The pages behind the links, on the time-skipping server with the real workflow, activities
and case store: the links come from the messages the case really sent (recording providers),
and every answer goes through the case service as the page does it."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import SecretStr
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from models.answers import CaseOutcome, ClientIntent
from models.case import RecipientRole, Stage
from service.page_links import page_links
from store.case_store import CaseStore
from tests import directory_data
from tests.harness import NO_QUIET_HOURS, Harness, harness
from tests.test_links import tamper
from web.app import create_app
from web.pages import PageDeps
from web.serve import RedactTokens

BASE = "http://127.0.0.1:8000"
LINKS: dict[str, Any] = {
    "message_links": "always",
    "link_secret": SecretStr("test-link-secret-0123456789"),
    "public_base_url": BASE,
}
THERAPIST, SUPERVISOR = directory_data.THERAPIST, directory_data.SUPERVISOR
CLIENT = directory_data.client("C1")
CONTACT = directory_data.CONTACT
CLOSE_OUT = {
    "outcome": "reached_safe",
    "note": "Spoke with the client; overslept, is safe.",
    "follow_up_plan": "Keep next week's session.",
    "materials": "Breathing exercise, 5 minutes each morning <b>daily</b>.",
    "fee_decision": "waive",
    "fee_reason": "first miss",
}
# Nothing that names the client, their contacts or what the messages said.
PHI = (
    CLIENT.first_name,
    CLIENT.last_name,
    CLIENT.phone or "",
    CLIENT.email or "",
    CONTACT.name,
    CONTACT.phone or "",
    "check in with you",
    "Please call or text us",
    "contact their provider",
)
# What the client's page must never say: nothing clinical, not even who their therapist is.
CLINICAL = ("therap", "session", "appointment", THERAPIST.name, "Lin", "Maya", "diagnos")


@asynccontextmanager
async def pages(
    h: Harness, now: Callable[[], datetime] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    deps = PageDeps(h.service, page_links(h.settings), h.settings)
    if now is not None:
        deps.now = now
    app = create_app(h.settings, deps)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


def link_in(body: str, path: str) -> str:
    """The path of the page link a message carries (the base URL is this deployment's)."""
    found = re.findall(re.escape(BASE + path) + r"[A-Za-z0-9_.\-]+", body)
    assert len(found) == 1, f"expected one {path} link in: {body!r}"
    return found[0].removeprefix(BASE)


def says(page: httpx.Response, word: str) -> bool:
    """Does the page's text (tags stripped, entities decoded) say this word?"""
    text = html.unescape(re.sub(r"<[^>]+>", " ", page.text))
    start = r"\b" if word[:1].isalnum() else ""
    return re.search(start + re.escape(word), text, re.IGNORECASE) is not None


def last_to(h: Harness, address: str) -> str:
    sent = h.providers.to(address)
    assert sent, f"nothing was sent to {address}"
    return sent[-1].body


async def test_the_therapist_closes_the_case_from_the_link_in_their_notification(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store, **LINKS) as h:
        handle = await h.start()
        await h.awaiting_close_out(handle)
        link = link_in(last_to(h, THERAPIST.email), "/case/")
        sms_link = link_in(last_to(h, THERAPIST.phone or ""), "/case/")
        async with pages(h) as web:
            page = await web.get(link)
            refused = await web.post(
                link, data={**CLOSE_OUT, "note": "  ", "fee_reason": "", "outcome": "fine"}
            )
            still_open = await h.status(handle)
            closed = await web.post(link, data=CLOSE_OUT)
            resolution = await handle.result()
            used = await web.get(link)
            used_again = await web.post(sms_link, data=CLOSE_OUT)
        stored = await sqlite_store.get_case(handle.id)

    assert page.status_code == 200, page.text
    assert handle.id in page.text and "Emergency contact" in page.text
    assert "voicemail left" in page.text and "Text" in page.text and "Email" in page.text
    assert 'data-kind="missed"' in page.text and "1 missed session (this one included)" in page.text
    for secret in PHI:
        assert not says(page, secret), secret
    assert page.headers["referrer-policy"] == "same-origin"
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]

    # Every bad field named beside its field, and nothing reached the case.
    assert refused.status_code == 422
    assert "Error: write a note" in refused.text
    assert "Error: a fee waiver needs a reason" in refused.text
    assert 'id="outcome-error"' in refused.text and 'aria-invalid="true"' in refused.text
    assert "Keep next week&#39;s session." in refused.text  # what was typed is kept
    assert still_open.closing is None and still_open.stage is Stage.awaiting_therapist

    assert closed.status_code == 200, closed.text
    assert "closed as reached_safe; outreach stopped" in closed.text
    assert (resolution.outcome, resolution.closed_by) == (CaseOutcome.reached_safe, "T1")
    assert resolution.client_materials == CLOSE_OUT["materials"]
    assert resolution.fee.therapist_decision == "waive" and resolution.fee.charged_cents == 0
    assert stored is not None and stored.outcome == "reached_safe"
    # The link is used: a clear page, and nothing changes (the SMS's link too).
    assert used.status_code == 410 and "already closed: reached_safe by T1" in used.text
    assert used_again.status_code == 410 and "Nothing was changed" in used_again.text
    assert await sqlite_store.get_resolution(handle.id) == resolution


async def test_im_on_it_pauses_the_reminders(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store, **LINKS) as h:
        handle = await h.start()
        await h.awaiting_close_out(handle)
        link = link_in(last_to(h, THERAPIST.email), "/case/")
        async with pages(h) as web:
            answered = await web.post(f"{link}/acknowledge")
            page = await web.get(link)
        status = await h.status(handle)

    assert answered.status_code == 200 and "reminders paused until" in answered.text
    assert status.acknowledged_until is not None and status.closing is None
    assert [n.author for n in status.notes if n.text.startswith("Acknowledged")] == ["T1"]
    assert "Acknowledged: reminders paused until" in page.text


async def test_bad_links_get_a_clear_page_and_change_nothing(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store, **LINKS) as h:
        handle = await h.start()
        await h.awaiting_close_out(handle)
        link = link_in(last_to(h, THERAPIST.email), "/case/")
        client_link = link_in(last_to(h, CLIENT.email or ""), "/r/")
        token = link.removeprefix("/case/")
        tampered = "/case/" + tamper(token, -5)
        signer = page_links(h.settings).signer
        far = datetime.now(UTC) + timedelta(days=3650)
        not_theirs = "/case/" + signer.mint(handle.id, RecipientRole.therapist, "S1", far)
        other_case = "/case/" + signer.mint(
            "missed-session-nope", RecipientRole.therapist, "T1", far
        )
        before = await h.status(handle)
        async with pages(h) as web:
            answers = {
                "tampered": await web.post(tampered, data=CLOSE_OUT),
                "client's link on the close-out page": await web.post(
                    "/case/" + client_link.removeprefix("/r/"), data=CLOSE_OUT
                ),
                "therapist's link on the client page": await web.post(
                    "/r/" + token, data={"intent": "ok"}
                ),
                "someone else's": await web.post(not_theirs, data=CLOSE_OUT),
                "cross-site form": await web.post(
                    link, data=CLOSE_OUT, headers={"Origin": "https://evil.example"}
                ),
                "cross-site acknowledgement": await web.post(
                    f"{link}/acknowledge", headers={"Sec-Fetch-Site": "cross-site"}
                ),
            }
            unknown = await web.get(other_case)
        # Links expire by the clock they were minted on: the test server's, which the suite's
        # earlier tests have moved on (by more than a year, in a full run).
        late_now = await time_skipping_env.get_current_time() + timedelta(days=400)
        async with pages(h, now=lambda: late_now) as late:
            expired = await late.post(link, data=CLOSE_OUT)
            expired_client = await late.get(client_link)
        after = await h.status(handle)

    for what, answer in answers.items():
        assert answer.status_code == 403, what
        assert "Close the case" not in answer.text, what
    assert "not valid" in answers["tampered"].text
    assert "must be sent from its own page" in answers["cross-site form"].text
    assert unknown.status_code == 404
    assert expired.status_code == 410 and "This link has expired" in expired.text
    assert expired_client.status_code == 410 and "+15555550100" in expired_client.text
    assert after.closing is None and after.notes == before.notes
    assert after.acknowledged_until is None and not after.client_responded


async def test_the_supervisors_link_works_for_the_supervisor(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store, **LINKS) as h:
        handle = await h.start()
        await h._advance(handle, lambda s: s.supervisor_notified, "supervisor notified")
        while not h.providers.to(SUPERVISOR.email):
            await time_skipping_env.sleep(timedelta(seconds=5))
        escalation = last_to(h, SUPERVISOR.email)
        link = link_in(escalation, "/case/")
        async with pages(h) as web:
            page = await web.get(link)
            closed = await web.post(link, data=CLOSE_OUT)
        resolution = await handle.result()

    assert link not in "".join(s.body for s in h.providers.to(THERAPIST.email))
    assert page.status_code == 200 and "You are the supervisor" in page.text
    assert closed.status_code == 200, closed.text
    assert resolution.closed_by == "S1"


async def test_the_client_answers_from_their_link_and_sees_the_materials_after_close_out(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store, **LINKS) as h:
        handle = await h.start(policy=NO_QUIET_HOURS)
        await h.round_one_sent(handle)
        texts = h.providers.to(CLIENT.phone or "")
        sms = next(s for s in texts if s.channel == "sms")
        call = next(s for s in texts if s.channel == "voice")
        email = last_to(h, CLIENT.email or "")
        link = link_in(sms.body, "/r/")
        async with pages(h) as web:
            page = await web.get(link)
            nonsense = await web.post(link, data={"intent": "maybe"})
            first = await web.post(link, data={"intent": "ok"})
            await h.awaiting_close_out(handle)  # outreach stops; the therapist is asked
            asked = last_to(h, THERAPIST.email)
            changed = await web.post(link, data={"intent": "call_me"})  # changed their mind
            double_tap = await web.post(link, data={"intent": "call_me"})  # answered once
            status = await h.status(handle)
            staff = await web.get(link_in(asked, "/case/"))
            before_close = await web.get(link)
            await h.answer(
                handle,
                "client_reached",
                outcome="reached_safe",
                note="Called back; safe.",
                follow_up_plan="Next week as usual.",
                fee={"decision": "charge"},
                by="T1",
                materials=CLOSE_OUT["materials"],
            )
            resolution = await handle.result()
            after_close = await web.get(link)
            late_answer = await web.post(link, data={"intent": "reschedule"})
        stored = await sqlite_store.get_resolution(handle.id)

    # The link is in texts and emails to the client; never in a call, never to the contact.
    assert "/r/" not in call.body
    link_in(email, "/r/")
    assert all(BASE not in s.body for s in h.providers.to(CONTACT.phone or ""))
    assert all(BASE not in s.body for s in h.providers.to(CONTACT.email or ""))

    assert page.status_code == 200
    for label in ("I&#39;m OK", "I&#39;d like to reschedule", "Please call me"):
        assert label in page.text
    assert "Riverside Practice" in page.text
    for word in (*PHI, *CLINICAL):
        assert not says(page, word), word
    assert nonsense.status_code == 422 and "Please choose one" in nonsense.text
    assert first.status_code == changed.status_code == double_tap.status_code == 200
    assert "Please call me" in changed.text
    assert status.client_responded and status.client_intent is ClientIntent.call_me
    assert [n.text for n in status.notes if "web link" in n.text] == [
        'Client responded via web link: "I\'m OK".',
        'Client responded via web link: "Please call me".',
    ]
    assert "The client answered on their page: \u201cPlease call me\u201d" in staff.text
    assert 'The client answered: "I\'m OK".' in asked  # the therapist is told too
    assert "We have your answer" in before_close.text and "Breathing" not in before_close.text

    assert resolution.client_intent is ClientIntent.call_me
    assert after_close.status_code == 200
    assert (
        "Breathing exercise, 5 minutes each morning &lt;b&gt;daily&lt;/b&gt;." in after_close.text
    )
    assert "<b>" not in after_close.text and "Please call me</button>" not in after_close.text
    for word in CLINICAL:
        assert not says(after_close, word), word
    # After the close-out an answer is still kept: a dated addendum to the resolution.
    assert late_answer.status_code == 200
    assert stored is not None and [a.author for a in stored.addenda] == ["client (web link)"]
    assert "I&#39;d like to reschedule" in late_answer.text


async def test_no_links_in_messages_when_the_public_url_is_loopback(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(
        time_skipping_env, sqlite_store, link_secret=SecretStr("test-link-secret-0123456789")
    ) as h:
        handle = await h.start()
        await h.awaiting_close_out(handle)
        await h.answer(handle, "client_reached", **_service_close_out())
        await handle.result()
        described = await h.client.get_workflow_handle(handle.id).describe()

    assert described.status is WorkflowExecutionStatus.COMPLETED
    assert h.providers.sent and all("/case/" not in s.body for s in h.providers.sent)
    assert all("/r/" not in s.body for s in h.providers.sent)


def _service_close_out() -> dict[str, Any]:
    return {
        "outcome": "reached_safe",
        "note": "n",
        "follow_up_plan": "p",
        "fee": {"decision": "charge"},
    }


async def test_a_case_terminated_by_hand_is_closed_on_its_pages(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore
) -> None:
    async with harness(time_skipping_env, sqlite_store, **LINKS) as h:
        handle = await h.start()
        await h.awaiting_close_out(handle)
        link = link_in(last_to(h, THERAPIST.email), "/case/")
        client_link = link_in(last_to(h, CLIENT.email or ""), "/r/")
        await handle.terminate(reason="by hand")
        await h.service.reconcile()
        async with pages(h) as web:
            staff = await web.post(link, data=CLOSE_OUT)
            client = await web.get(client_link)

    assert staff.status_code == 410 and "ended as terminated" in staff.text
    assert client.status_code == 200 and "This check-in is closed" in client.text
    assert "Please call me" not in client.text


def test_the_access_log_never_shows_a_token() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "POST", "/case/WyJtaXNz.abc/acknowledge", "1.1", 200), None,
    )  # fmt: skip
    RedactTokens().filter(record)
    client = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/r/WyJtaXNz.abc", "1.1", 200), None,
    )  # fmt: skip
    RedactTokens().filter(client)
    assert record.getMessage() == '127.0.0.1:5000 - "POST /case/…/acknowledge HTTP/1.1" 200'
    assert "WyJ" not in client.getMessage() and "/r/…" in client.getMessage()
