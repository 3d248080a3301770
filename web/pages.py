"""What every page shares: its dependencies, the templates, a link's check, and the headers
and origin rule that keep a signed link's page to itself.

Security, in short: each page is reached through a signed, expiring, single-case link (the
token is in the path, and every form posts back to the same path, so the token is the form's
CSRF secret: another site cannot forge a form for a case without it). No cookies are set, so
there is no session to ride (SameSite has nothing to protect); a POST that a browser says comes
from another site (`Sec-Fetch-Site`, else `Origin`) is refused all the same. Pages are never
cached, never framed, and send no `Referer` to another site (the token must not leak through a
link on the page).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from fastapi import Request, Response
from fastapi.templating import Jinja2Templates

from models.case import CaseStatus, Resolution
from models.links import LinkAudience, LinkClaim, LinkError, PageLinks
from models.report import local_label
from service.cases import CaseError, CaseService
from settings import Settings
from store.rows import CaseRow

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
STATIC = Path(__file__).parent / "static"

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    # Not "no-referrer": with it, browsers send `Origin: null` on the page's own forms.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}


@dataclass
class PageDeps:
    """What the pages need: the one case service, the deployment's links, a clock."""

    service: CaseService
    links: PageLinks
    settings: Settings
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def when(self, moment: datetime) -> str:
        return local_label(moment, self.settings.practice_time_zone)

    def short(self, moment: datetime) -> str:
        """'Tue Dec 1, 6:43 PM' in the practice's zone (the page names the zone once)."""
        local = moment.astimezone(ZoneInfo(self.settings.practice_time_zone))
        return local.strftime("%a %b %-d, %-I:%M %p")


class PageProblem(Exception):
    """A request the page refuses, with the HTTP status and what the person is told."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


def render(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    return TEMPLATES.TemplateResponse(request, template, context, status_code=status)


def claim_of(deps: PageDeps, token: str, audience: LinkAudience) -> LinkClaim:
    try:
        return deps.links.signer.verify(token, audience, deps.now())
    except LinkError as exc:
        if exc.kind == "expired":
            raise PageProblem(410, "This link has expired", _expired(audience, deps)) from None
        raise PageProblem(
            403, "This link is not valid", "The link is incomplete or was changed."
        ) from None


def _expired(audience: LinkAudience, deps: PageDeps) -> str:
    if audience is LinkAudience.staff:
        return (
            "Links expire for safety. Open the link in the newest reminder, or close the case "
            "with `starter.py reached`."
        )
    return f"Please call or text us at {deps.settings.practice_callback_number}."


async def case_of(deps: PageDeps, case_id: str) -> tuple[CaseRow, Resolution | CaseStatus]:
    """The case's record and its resolution (closed) or live status (open)."""
    row = await deps.service.store.get_case(case_id)
    if row is None:
        raise PageProblem(404, "No such case", "This case is not on record.")
    try:
        return row, await deps.service.status(case_id)
    except CaseError:
        raise PageProblem(
            503,
            "The case cannot be read just now",
            "The case system is not reachable. Please try again in a few minutes.",
        ) from None


def same_origin(request: Request, deps: PageDeps) -> None:
    """A form is only taken from the page itself (or from a client that says nothing: the
    token in the path still has to be right). Browsers say where a request comes from in
    `Sec-Fetch-Site` (which a page cannot forge), older ones only in `Origin`."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        if fetch_site not in ("same-origin", "none"):
            raise PageProblem(403, "Form refused", "This form must be sent from its own page.")
        return
    origin = request.headers.get("origin")
    if origin is None:
        return
    own = {f"{request.url.scheme}://{request.url.netloc}", _origin(deps.settings.public_base_url)}
    if origin.rstrip("/") not in own:
        raise PageProblem(403, "Form refused", "This form must be sent from its own page.")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def problem_page(request: Request, problem: PageProblem) -> Response:
    return render(
        request,
        "problem.html",
        status=problem.status,
        title=problem.title,
        message=problem.message,
    )


async def with_security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
