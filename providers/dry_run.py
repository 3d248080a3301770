"""Dry-run channels: without credentials nothing is sent, and every attempt says so (by the
recipient's role, never an address: the activity names the role)."""

from __future__ import annotations

from models.case import AttemptResult
from providers.base import CallOutcome, ProviderReceipt


class DryRunSms:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send_sms(self, to: str, body: str) -> ProviderReceipt:
        self.sent.append((to, body))
        return ProviderReceipt(dry_run=True, detail="dry run: nothing sent")


class DryRunEmail:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send_email(self, to: str, subject: str, body: str, key: str) -> ProviderReceipt:
        self.sent.append((to, subject))
        return ProviderReceipt(dry_run=True, detail="dry run: nothing sent")


class DryRunVoice:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def start_call(self, to: str, spoken_message: str) -> ProviderReceipt:
        self.sent.append((to, spoken_message))
        return ProviderReceipt(dry_run=True, detail="dry run: nothing sent")

    async def call_outcome(self, call_id: str) -> CallOutcome | None:
        return CallOutcome(result=AttemptResult.dry_run)
