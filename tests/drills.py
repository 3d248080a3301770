"""What the fault drills share: waiting for a condition on a real server, and the settings that
point the official Twilio and SendGrid clients at the fake endpoint."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import SecretStr

from settings import Settings
from tests.fake_provider_server import FakeProviderServer


async def until(
    check: Callable[[], Awaitable[bool]],
    what: str,
    seconds: float,
    ask_again_on: tuple[type[BaseException], ...] = (),
    every: float = 0.2,
) -> None:
    """Poll `check` until it is true; an error in `ask_again_on` (a busy server, a query while
    no worker is there) is another "not yet". Fails naming `what` after `seconds`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        try:
            if await check():
                return
        except ask_again_on:
            pass
        if loop.time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(every)


def provider_settings(fake: FakeProviderServer, **changes: Any) -> Settings:
    """Real Twilio and SendGrid providers, their requests going to `fake`."""
    return Settings(
        twilio_account_sid="AC" + "0" * 32,
        twilio_auth_token=SecretStr("test-token"),
        twilio_from_number="+15555550100",
        twilio_api_base_url=fake.base_url,
        sendgrid_api_key=SecretStr("SG.test-key"),
        sendgrid_from_email="care@example.org",
        sendgrid_api_host=fake.base_url,
        **changes,
    )
