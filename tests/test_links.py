"""Signed page links (pure): valid, expired, tampered, another case's, another page's, another
secret's; which messages carry a link; when messages carry links at all; the secret's file."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from models.case import Purpose, RecipientRole, StaffSituation
from models.directory import Channel
from models.links import LinkAudience, LinkError, LinkSigner, PageLinks
from models.messages import MessageFacts, PracticeInfo, compose
from service.page_links import link_signer
from settings import Settings
from store.secrets import SecretsKeyError, link_secret

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
SIGNER = LinkSigner(b"a-secret-of-the-practice-0123456")
CASE = "missed-session-A1"


def test_a_valid_link_says_its_case_role_person_and_expiry() -> None:
    token = SIGNER.mint(CASE, RecipientRole.therapist, "T1", NOW + timedelta(hours=72))
    claim = SIGNER.verify(token, LinkAudience.staff, NOW, case_id=CASE)
    assert (claim.case_id, claim.role, claim.person_id) == (CASE, RecipientRole.therapist, "T1")
    assert claim.expires_at == NOW + timedelta(hours=72)
    client = SIGNER.mint(CASE, RecipientRole.client, "C1", NOW + timedelta(days=1))
    assert SIGNER.verify(client, LinkAudience.client, NOW).person_id == "C1"


def test_a_link_expires() -> None:
    token = SIGNER.mint(CASE, RecipientRole.supervisor, "S1", NOW + timedelta(hours=1))
    SIGNER.verify(token, LinkAudience.staff, NOW + timedelta(minutes=59))
    with pytest.raises(LinkError) as expired:
        SIGNER.verify(token, LinkAudience.staff, NOW + timedelta(hours=1))
    assert expired.value.kind == "expired"


_URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def tamper(token: str, position: int) -> str:
    """The token with one character changed in its high bits (a change in the padding bits
    of a base64 string's last character would decode to the same bytes)."""
    index = position % len(token)
    char = token[index]
    swapped = _URLSAFE[(_URLSAFE.index(char) + 32) % 64] if char in _URLSAFE else "A"
    return token[:index] + swapped + token[index + 1 :]


@pytest.mark.parametrize("position", [0, 10, 30, -2, -10])
def test_a_tampered_link_is_invalid(position: int) -> None:
    token = SIGNER.mint(CASE, RecipientRole.therapist, "T1", NOW + timedelta(hours=1))
    tampered = tamper(token, position)
    assert tampered != token
    with pytest.raises(LinkError) as invalid:
        SIGNER.verify(tampered, LinkAudience.staff, NOW)
    assert invalid.value.kind == "invalid"


def test_a_link_is_for_one_case_one_page_and_one_secret() -> None:
    staff = SIGNER.mint(CASE, RecipientRole.therapist, "T1", NOW + timedelta(hours=1))
    client = SIGNER.mint(CASE, RecipientRole.client, "C1", NOW + timedelta(hours=1))
    with pytest.raises(LinkError, match="another case"):
        SIGNER.verify(staff, LinkAudience.staff, NOW, case_id="missed-session-A2")
    with pytest.raises(LinkError, match="not valid"):
        SIGNER.verify(staff, LinkAudience.client, NOW)  # the therapist's link on the client page
    with pytest.raises(LinkError, match="not valid"):
        SIGNER.verify(client, LinkAudience.staff, NOW)  # the client's on the close-out page
    other = LinkSigner(b"another-practice-secret-01234567")
    with pytest.raises(LinkError, match="not valid"):
        other.verify(staff, LinkAudience.staff, NOW)
    with pytest.raises(LinkError, match="not valid"):
        SIGNER.verify("", LinkAudience.staff, NOW)


def test_nobody_but_client_therapist_and_supervisor_gets_a_link() -> None:
    links = PageLinks(SIGNER, "https://care.example/", timedelta(hours=72), timedelta(days=14))
    therapist = links.url(CASE, RecipientRole.therapist, "T1", NOW)
    client = links.url(CASE, RecipientRole.client, "C1", NOW)
    assert therapist is not None and therapist.startswith("https://care.example/case/")
    assert client is not None and client.startswith("https://care.example/r/")
    token = client.removeprefix("https://care.example/r/")
    assert SIGNER.verify(token, LinkAudience.client, NOW).expires_at == NOW + timedelta(days=14)
    assert links.url(CASE, RecipientRole.emergency_contact, "C1", NOW) is None
    assert links.url(CASE, RecipientRole.on_call, "on-call", NOW) is None
    with pytest.raises(ValueError):
        SIGNER.mint(CASE, RecipientRole.emergency_contact, "C1", NOW)


def test_a_link_holds_no_phi() -> None:
    token = SIGNER.mint(CASE, RecipientRole.client, "C1", NOW + timedelta(days=14))
    assert len(token) < 120  # fits an SMS beside the message
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def _facts(link: str) -> MessageFacts:
    return MessageFacts(
        practice=PracticeInfo(name="Riverside", callback_number="+15555550100"),
        practice_time_zone="America/New_York",
        case_id=CASE,
        client_first_name="Alex",
        client_time_zone="America/New_York",
        detailed_ok=False,
        therapist_name="Dr. Maya Lin",
        recipient_name="Jordan",
        scheduled_start=NOW,
        now=NOW,
        situation=StaffSituation.nobody_reached,
        link=link,
    )


LINK = "https://care.example/r/abc.def"


@pytest.mark.parametrize("purpose", list(Purpose))
@pytest.mark.parametrize("channel", list(Channel))
def test_which_messages_carry_the_link(purpose: Purpose, channel: Channel) -> None:
    body = compose(purpose, channel, _facts(LINK)).body
    carries = channel is not Channel.voice and purpose is not Purpose.emergency_contact_check
    assert (LINK in body) is carries
    assert LINK not in compose(purpose, channel, _facts("")).body
    if carries:
        assert compose(purpose, channel, _facts("")).body in body  # the message, then the link


@pytest.mark.parametrize(
    ("mode", "base", "expected"),
    [
        ("auto", "http://127.0.0.1:8000", None),
        ("auto", "http://localhost:8000/", None),
        ("auto", "http://[::1]:8000", None),
        ("auto", "https://care.example/", "https://care.example"),
        ("always", "http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
        ("never", "https://care.example", None),
    ],
)
def test_messages_carry_links_only_where_recipients_can_open_them(
    mode: str, base: str, expected: str | None
) -> None:
    settings = Settings(message_links=mode, public_base_url=base)  # type: ignore[arg-type]
    assert settings.message_link_base() == expected


def test_the_link_secret_file_is_made_once_private_and_shared(tmp_path: Path) -> None:
    path = tmp_path / "data" / "link.key"
    first = link_secret(None, str(path))
    assert link_secret(None, str(path)) == first and len(first) >= 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert link_secret("a configured secret, long enough", str(path)) != first
    with pytest.raises(SecretsKeyError, match="at least 16"):
        link_secret("short", str(path))
    settings = Settings(link_secret=SecretStr("a configured secret, long enough"))
    token = link_signer(settings).mint(CASE, RecipientRole.client, "C1", NOW)
    assert LinkSigner(b"a configured secret, long enough").verify(
        token, LinkAudience.client, NOW - timedelta(seconds=1)
    )
