"""The deployment's page links (`models.links.PageLinks`) from settings: the link secret (read,
or created on first use) and the public base URL. The web service verifies with it; the worker
hands it to the outreach activities, which mint each message's link when they send (reading the
secret is a side effect: never in workflow code)."""

from __future__ import annotations

from datetime import timedelta

from models.links import LinkSigner, PageLinks
from settings import Settings
from store.secrets import link_secret


def link_signer(settings: Settings) -> LinkSigner:
    secret = settings.link_secret.get_secret_value() if settings.link_secret else None
    return LinkSigner(link_secret(secret, settings.link_secret_file))


def page_links(settings: Settings, base_url: str | None = None) -> PageLinks:
    """Links that start with `base_url` (default `PUBLIC_BASE_URL`)."""
    return PageLinks(
        link_signer(settings),
        base_url or settings.public_base_url,
        staff_ttl=timedelta(hours=settings.staff_link_ttl_hours),
        client_ttl=timedelta(days=settings.client_link_ttl_days),
    )


def message_links(settings: Settings) -> PageLinks | None:
    """The links messages carry, or None when they carry none (`MESSAGE_LINKS`, and a loopback
    `PUBLIC_BASE_URL` under "auto")."""
    base = settings.message_link_base()
    return page_links(settings, base) if base else None
