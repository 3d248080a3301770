"""Dry-run channels: without credentials nothing is sent, and every attempt says so (by the
recipient's role, never an address: the activity names the role). Nothing is kept: a
dry-run worker runs for days, and what it would have sent (addresses, texts) is PHI."""

from __future__ import annotations

from models.case import AttemptResult
from providers.base import CallOutcome, ProviderReceipt


class DryRunSms:
    async def send_sms(self, to: str, body: str) -> ProviderReceipt:
        return ProviderReceipt(dry_run=True, detail="dry run: nothing sent")


class DryRunEmail:
    async def send_email(self, to: str, subject: str, body: str, key: str) -> ProviderReceipt:
        return ProviderReceipt(dry_run=True, detail="dry run: nothing sent")


class DryRunVoice:
    async def start_call(self, to: str, spoken_message: str) -> ProviderReceipt:
        return ProviderReceipt(dry_run=True, detail="dry run: nothing sent")

    async def call_outcome(self, call_id: str) -> CallOutcome | None:
        return CallOutcome(result=AttemptResult.dry_run)
