"""Hostile input for the property tests of every boundary (tests/test_hostile_*.py): text with
NUL and control characters, non-ASCII digits, lone surrogates (a command-line argument that is
not UTF-8), values longer than the store's columns, dates at the ends of the calendar.

`run_property` runs a hypothesis test whose examples are coroutines on the test's own event
loop (where the session's fixtures live: the case store's connections, the Temporal client),
from a thread of its own, so hypothesis stays synchronous and nothing runs on a second loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

T = TypeVar("T")

ARABIC_DIGITS_PHONE = "+" + "".join(chr(0x0660 + int(d)) for d in "15555550101")
"""+15555550101 in Arabic-Indic digits: `\\d` matches them; E.164 (ASCII digits) must not."""
FULLWIDTH_DIGIT_PHONE = "+1555555010" + chr(0xFF11)

FAST = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,  # the examples that once failed are kept as explicit @example / tests
)

FEWER = settings(FAST, max_examples=25)
"""For properties whose every example is a round trip to a Temporal server."""

NASTY_CHARACTERS = [
    "\x00",  # PostgreSQL refuses it in text
    "\x1b[31m",  # a terminal escape
    "\x07",
    "\u202e",  # right-to-left override
    "\ufeff",
    "\n",
    "\r\n",
    "\t",
    "\u2028",
    "'",
    '"',
    ",",
    ";",
    "\\",
    "%s",
    "{0}",
    "١٢٣",  # Arabic-Indic digits: \d matches them, E.164 must not
    "\uff11\uff12\uff13",  # fullwidth digits
    "é",
    "😀",
]

hostile_text = st.one_of(
    st.sampled_from(NASTY_CHARACTERS),
    st.text(max_size=12),
    st.text(st.characters(codec="utf-8"), max_size=30),
    st.builds(
        lambda c, n: c * n,
        st.sampled_from(["A", "é", "1"]),
        st.sampled_from([63, 64, 65, 200, 201, 255, 5001]),
    ),
    st.builds(lambda a, b: a + b, st.text(max_size=5), st.sampled_from(NASTY_CHARACTERS)),
)
"""Text from outside: anything JSON or a UTF-8 file can carry."""

surrogate_text = st.builds(
    lambda a, b: a + b, st.text(max_size=5), st.sampled_from(["\udcff", "\ud800", "\udc80"])
)
"""What Python makes of a command-line argument that is not UTF-8 (surrogateescape)."""

extreme_dates = st.sampled_from(
    [
        "0001-01-01T00:00:00+00:00",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-12:00",
        "9999-12-31T23:59:59+00:00",
        "1999-12-31T23:59:59Z",
        "2201-01-01T00:00:00Z",
        "2026-02-30T10:00:00Z",
        "2026-11-23T15:00:00",  # no offset
        "2026-11-23T15:00:00+25:00",
        "not a date",
        "",
    ]
)

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | hostile_text
    | extreme_dates,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=8,
)
"""Any value a JSON body (or a hand-made Update) can carry."""


def on_loop(loop: asyncio.AbstractEventLoop, work: Awaitable[T], timeout: float = 60) -> T:
    """Run a coroutine on the test's loop from the property's thread, and wait for it."""
    return asyncio.run_coroutine_threadsafe(work, loop).result(timeout)  # type: ignore[arg-type]


async def run_property(prop: Callable[[], None]) -> None:
    """Run a @given test (synchronous, calling `on_loop`) off the loop, so the loop is free."""
    await asyncio.to_thread(prop)


def printable_line(text: str) -> bool:
    """One line with no control character: what a terminal shows as it is."""
    return "\n" not in text and all(c.isprintable() or c == " " for c in text)


class _RecordedHandle:
    def __init__(self, sent: list[tuple[str, Any]], case_id: str) -> None:
        self._sent, self.id = sent, case_id

    async def execute_update(
        self, update: str, payload: Any, result_type: type, id: str | None = None
    ) -> Any:
        from models.answers import AnswerReceipt

        self._sent.append((update, payload))
        return AnswerReceipt(case_id=self.id, accepted="taken")


class RecordingTemporal:
    """The Temporal client as the case service uses it to answer a case, recording each
    Update it would send (an answer reaches it only once the service found it valid)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def get_workflow_handle(self, case_id: str) -> _RecordedHandle:
        return _RecordedHandle(self.sent, case_id)
