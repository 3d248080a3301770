"""Texts clients send to the practice's number (Twilio's inbound SMS webhook).

- A reply answers `client_responded` (via "sms", the text kept as the note) on the sender's
  open case; with several open, the one whose session is the most recent.
- With no open case, the text is added as a dated addendum to the client's latest (closed)
  case, the record their therapist reads; a client with no case at all is kept in the store
  with their therapist of record (`inbound_messages`). See README, "Inbound texts".
- STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT withdraw consent to texts in the directory
  (kept across re-imports) and are noted in every open case; outreach re-checks consent before
  each text, so no case texts that number again. START or UNSTOP restore it. HELP is answered
  with the practice's contact line.

Every text is kept in the store first, under Twilio's MessageSid; one already handled is a
replay (`AlreadyHandled`) and changes nothing.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from models.directory import Channel, ClientProfile
from service.cases import CaseError, CaseService
from settings import Settings
from store.web_records import InboundKind
from workflows.client_text_notice import ClientTextNoticeWorkflow, TextNotice

log = logging.getLogger(__name__)

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "UNSTOP"})
HELP_WORDS = frozenset({"HELP"})
NOTE_LIMIT = 4000  # the case's note limit is 5000; room for the words around the text
_E164 = re.compile(r"^\+[1-9][0-9]{7,14}\Z")
AUTHOR = "client (sms)"


class AlreadyHandled(Exception):
    """This MessageSid was handled before: a replay (or a retry of a handled request)."""


@dataclass(frozen=True)
class ReplyOutcome:
    kind: InboundKind
    case_id: str | None
    outcome: str  # what was done, for the store (no PHI beyond ids)
    answer_text: str | None = None  # the text to send back (TwiML), if any


def keyword(body: str) -> InboundKind:
    """Carriers and Twilio act on a message that is just the keyword (any case, spaces and a
    final full stop or exclamation mark aside); any other text is a reply."""
    word = body.strip().rstrip(".!").strip().upper()
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    if word in HELP_WORDS:
        return "help"
    return "reply"


def clean_text(body: str) -> str:
    """A text as a case note: control characters (other than line breaks) become spaces, and
    it is cut to the note's limit, so an odd text never makes the answer fail."""
    text = "".join(
        " " if unicodedata.category(c) == "Cc" and c not in "\n\t\r" else c for c in body
    )
    return text.strip()[:NOTE_LIMIT]


class ReplyService:
    def __init__(self, cases: CaseService, settings: Settings) -> None:
        self._cases = cases
        self._store = cases.store
        self._settings = settings

    async def receive(
        self, message_sid: str, from_number: str, body: str, now: datetime
    ) -> ReplyOutcome:
        """Handle one inbound text, once per MessageSid."""
        previous = await self._store.get_inbound(message_sid)
        if previous is not None and previous.state == "done":
            raise AlreadyHandled(message_sid)
        body = body.replace("\x00", "")  # PostgreSQL cannot store a NUL in text
        number = re.sub(r"[ \-().]", "", from_number).replace("\x00", "")
        clients = await self._store.clients_with_phone(number) if _E164.match(number) else []
        kind = keyword(body)
        therapist_id = next((c.therapist_id for c in clients if c.therapist_id), None)
        await self._store.record_inbound(
            message_sid,
            now,
            number[:32],
            body,
            kind,
            clients[0].client_id if clients else None,
            therapist_id,
        )
        if kind == "stop":
            outcome = await self._consent(clients, now, withdraw=True)
        elif kind == "start":
            outcome = await self._consent(clients, now, withdraw=False)
        elif kind == "help":
            outcome = ReplyOutcome(
                "help",
                None,
                "answered with the practice's contact line",
                f"{self._settings.practice_name}: to reach us, call "
                f"{self._settings.practice_callback_number}.",
            )
        else:
            outcome = await self._reply(message_sid, clients, clean_text(body), therapist_id)
        await self._store.finish_inbound(message_sid, outcome.case_id, outcome.outcome)
        log.info("inbound text handled: %s", outcome.kind, extra={"case_id": outcome.case_id})
        return outcome

    async def _reply(
        self, message_sid: str, clients: list[ClientProfile], text: str, therapist_id: str | None
    ) -> ReplyOutcome:
        if not clients:
            return ReplyOutcome("reply", None, "from a number that is no client's; kept")
        await self._cases.temporal()  # unreachable: raised (503), the text stays unhandled
        note = f"Texted back: {text}" if text else "Texted back (an empty message)."
        for case in await self._store.cases_of_clients(c.client_id for c in clients):
            try:
                await self._cases.answer(
                    case.case_id, "client_responded", {"via": "sms", "note": note}
                )
            except CaseError:  # closed meanwhile, or not running: the next one, else the record
                continue
            return ReplyOutcome("reply", case.case_id, f"client_responded on {case.case_id}")
        latest = await self._store.cases_of_clients((c.client_id for c in clients), open_only=False)
        text_note = f"Client texted after the case closed: {text}"
        for case in latest:
            try:
                await self._cases.note(case.case_id, {"author": AUTHOR, "text": text_note})
            except CaseError:
                continue
            await self._tell_therapist(message_sid, clients, therapist_id)
            return ReplyOutcome(
                "reply", case.case_id, f"no open case; added to the record of {case.case_id}"
            )
        who = f"therapist {therapist_id}" if therapist_id else "no therapist on file"
        await self._tell_therapist(message_sid, clients, therapist_id)
        return ReplyOutcome("reply", None, f"no case for this client; kept for {who}")

    async def _tell_therapist(
        self, message_sid: str, clients: list[ClientProfile], therapist_id: str | None
    ) -> None:
        """No open case took the text: the therapist of record is told (by a workflow, so the
        email is sent once and retried like every message; its id is Twilio's MessageSid)."""
        if therapist_id is None:
            return
        client = await self._cases.temporal()
        notice = TextNotice(client_id=clients[0].client_id, therapist_id=therapist_id)
        try:
            await client.start_workflow(
                ClientTextNoticeWorkflow.run,
                notice,
                id=f"client-text-{message_sid}",
                task_queue=self._settings.temporal_task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            pass  # told already (Twilio delivered the text again)

    async def _consent(
        self, clients: list[ClientProfile], now: datetime, withdraw: bool
    ) -> ReplyOutcome:
        kind: InboundKind = "stop" if withdraw else "start"
        if not clients:
            return ReplyOutcome(kind, None, "from a number that is no client's; kept")
        await self._cases.temporal()  # unreachable: raised (503) before anything changed
        changed = []
        change = self._store.withdraw_consent if withdraw else self._store.restore_consent
        source = (
            "the client texted a carrier opt-out keyword to the practice's number"
            if withdraw
            else "the client texted START to the practice's number"
        )
        for client in clients:
            if await change(client.client_id, Channel.sms, now, source):
                changed.append(client.client_id)
        text = (
            "The client texted an opt-out keyword: consent to texts is withdrawn; no more texts "
            "are sent to them."
            if withdraw
            else "The client texted START: texts to them are allowed again."
        )
        noted = []
        for case in await self._store.cases_of_clients(c.client_id for c in clients):
            try:
                await self._cases.answer(
                    case.case_id, "add_note", {"author": "system", "text": text}
                )
            except CaseError:
                continue
            noted.append(case.case_id)
        what = "consent to texts withdrawn" if withdraw else "consent to texts restored"
        outcome = f"{what} for {', '.join(changed) or 'nobody (no change)'}"
        if noted:
            outcome += f"; noted in {', '.join(noted)}"
        return ReplyOutcome(kind, noted[0] if noted else None, outcome)
