"""Fetching an iCalendar feed: a file, or a calendar's export/subscription URL.

Subscription URLs usually carry their secret in the path or the query ("private-<token>",
"?token=..."), and these errors end up in logs and in Temporal history. So an error names only
the scheme and host it came from ("HTTP 404 from https://calendar.example.com"), never the
path, the query or a user:password, and it does not chain httpx's exception (whose request
holds the whole URL) into the traceback.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import httpx

from calendars.feed import FeedError

__all__ = ["MAX_FEED_BYTES", "fetch_ics"]

# A practice's calendar is a few MB; anything far bigger is a mistake (or an attack), not a feed.
MAX_FEED_BYTES = 100 * 1024 * 1024
_HTTP_SCHEMES = {"http": "http", "https": "https", "webcal": "https", "webcals": "https"}
_HEADERS = {
    "Accept": "text/calendar, */*;q=0.5",
    "User-Agent": "missed-session-outreach calendar sweep",
}


async def fetch_ics(location: str, timeout: float = 30) -> bytes:  # noqa: ASYNC109
    """The bytes of the feed at `location`: a file path, a file:// URL, or an http(s) URL
    (webcal:// is https). Redirects are followed; `timeout` bounds the whole fetch (it is a
    parameter, not left to the caller's `asyncio.timeout`, so that running out of time is a
    `FeedError` that names the host like every other failure). Raises `FeedError` with a
    one-line message naming only the scheme and host (or the file)."""
    parts = urlsplit(location)
    scheme = parts.scheme.lower()
    if scheme == "" or (len(scheme) == 1 and location[1:2] == ":"):  # a path (C:\ too)
        return await _read_file(Path(location))
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise FeedError("a file:// URL must name a local file (file:///path)")
        return await _read_file(Path(url2pathname(unquote(parts.path))))
    if scheme not in _HTTP_SCHEMES:
        raise FeedError(f"unsupported feed location scheme {scheme!r} (use a path or https://)")
    url = _HTTP_SCHEMES[scheme] + location[len(parts.scheme) :]
    return await _fetch_http(url, timeout)


async def _read_file(path: Path) -> bytes:
    try:
        size = await asyncio.to_thread(lambda: path.stat().st_size)
        if size > MAX_FEED_BYTES:
            raise FeedError(f"feed file {path} is larger than {MAX_FEED_BYTES // 2**20} MB")
        return await asyncio.to_thread(path.read_bytes)
    except FileNotFoundError:
        raise FeedError(f"no feed file at {path}") from None
    except IsADirectoryError:
        raise FeedError(f"feed location {path} is a directory, not a file") from None
    except PermissionError:
        raise FeedError(f"feed file {path} cannot be read (permission denied)") from None
    except OSError as exc:
        raise FeedError(f"feed file {path} cannot be read ({type(exc).__name__})") from None


async def _fetch_http(url: str, seconds: float) -> bytes:
    try:
        origin = _origin(httpx.URL(url))
    except (httpx.InvalidURL, ValueError, TypeError):
        raise FeedError("the feed location is not a valid URL") from None
    try:
        async with asyncio.timeout(seconds):
            async with httpx.AsyncClient(
                follow_redirects=True, timeout=seconds, headers=_HEADERS
            ) as client:
                async with client.stream("GET", url) as response:
                    if not response.is_success:
                        raise FeedError(f"HTTP {response.status_code} from {_origin(response.url)}")
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > MAX_FEED_BYTES:
                            raise FeedError(
                                f"the feed from {origin} is larger than "
                                f"{MAX_FEED_BYTES // 2**20} MB"
                            )
                    return bytes(body)
    except (TimeoutError, httpx.TimeoutException):
        raise FeedError(f"no complete answer from {origin} within {seconds:g} s") from None
    except httpx.TooManyRedirects:
        raise FeedError(f"too many redirects from {origin}") from None
    except httpx.HTTPError as exc:
        # Only the exception's type: httpx's messages may repeat the URL.
        raise FeedError(f"cannot fetch the feed from {origin} ({type(exc).__name__})") from None


def _origin(url: httpx.URL) -> str:
    """scheme://host[:port]: enough to know which server answered, without its secrets."""
    host = f"[{url.host}]" if ":" in url.host else url.host
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{host}{port}"
