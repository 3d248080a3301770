"""Hostile input at the policy file and the command line.

A policy file is loaded whole or refused with one line naming the file and every bad key
(durations of millions of days, year-9999 values, a NUL, a misspelt key at any depth). The
command line answers any argv with exit status 2 and one line on stderr, never a traceback,
before it connects to anything (TEMPORAL_ADDRESS points where nothing listens).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from models.policy import PolicyError, load_policy
from starter import main
from tests.hostile import FAST, extreme_dates, hostile_text, printable_line, surrogate_text

SAMPLES = Path(__file__).parent.parent / "samples" / "directory.csv"
DEFAULT: dict[str, Any] = load_policy("policies/default.toml").model_dump(mode="json")
KEYS = sorted(DEFAULT)


# ---------------------------------------------------------------------- writing TOML
def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else ("inf" if value > 0 else "-inf")
            if math.isinf(value)
            else repr(value)
        )
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items())
            + "}"
        )
    if value is None:
        return '""'
    raise TypeError(type(value))


def _toml(policy: dict[str, Any]) -> str:
    return "".join(f"{json.dumps(key)} = {_toml_value(value)}\n" for key, value in policy.items())


EXTREMES = st.one_of(
    st.sampled_from(
        [
            "99999999d",  # millions of days
            "1000000000d",
            "P99999999D",
            "PT1e400S",
            "0s",
            "-5m",
            "9999999999999w",
            "20m\x00",
            "",
            1e308,
            math.inf,
            math.nan,
            -0.0,
            2**63,
            -(2**63),
            10**40,
            datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
            datetime(1, 1, 1),
            date(9999, 12, 31),
            time(23, 59, 59),
            [],
            {},
            ["voice", "voice"],
            ["fax"],
            {"standard": 10**30},
        ]
    ),
    hostile_text,
    extreme_dates,
)
MISSPELT = st.sampled_from(
    ["therapist_reminder_evry", "grace ", "Grace", "quiet_hour", "rounds_", "nme", "\x00", "é"]
)


@st.composite
def policy_files(draw: st.DrawFn) -> tuple[dict[str, Any], str | None]:
    """The default policy with a few values replaced by extremes and, now and then, an unknown
    key at the top, in quiet_hours, in a round, or among the risk levels. Returns the policy
    and the unknown key (to be named)."""
    policy = json.loads(json.dumps(DEFAULT))
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=3, unique=True)):
        policy[key] = draw(EXTREMES)
    unknown = None
    where = draw(st.sampled_from(["none", "none", "top", "quiet_hours", "round", "risk"]))
    if where != "none":
        unknown = draw(MISSPELT | st.text(min_size=1, max_size=10))
        if where == "top" and unknown not in policy:
            policy[unknown] = draw(EXTREMES)
        elif where == "quiet_hours" and isinstance(policy.get("quiet_hours"), dict):
            policy["quiet_hours"][unknown] = "21:00"
        elif where == "round" and isinstance(policy.get("rounds"), list) and policy["rounds"]:
            if isinstance(policy["rounds"][0], dict):
                policy["rounds"][0][unknown] = "1h"
        elif where == "risk" and isinstance(
            policy.get("client_rounds_before_emergency_contact"), dict
        ):
            policy["client_rounds_before_emergency_contact"][unknown] = 1
        else:
            unknown = None
    return policy, unknown


def test_a_hostile_policy_file_is_loaded_or_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"

    @FAST
    @given(policy_files())
    @example(({**DEFAULT, "therapist_reminder_every": "99999999d"}, None))
    @example(({**DEFAULT, "grace": math.inf, "name": "x\x00y"}, None))
    @example(({**DEFAULT, "quiet_hours": {"enabled": True, "stat": "21:00"}}, "stat"))
    def prop(case: tuple[dict[str, Any], str | None]) -> None:
        policy, unknown = case
        path.write_text(_toml(policy), encoding="utf-8")
        try:
            loaded = load_policy(path)
        except PolicyError as exc:
            message = str(exc)
            assert message.startswith(f"invalid escalation policy {path}: "), message
            assert printable_line(message), message
            assert "https://" not in message and "Value error" not in message
            if unknown is not None and unknown.isprintable() and "not valid TOML" not in message:
                assert unknown.strip() in message, message
            return
        assert unknown is None, f"unknown key {unknown!r} was accepted"
        assert loaded.name == policy["name"]

    prop()


@pytest.mark.parametrize(
    "content",
    [b"\xff\xfe\x00g\x00r", b'name = "x"\ngrace = \n', b"\x00" * 10, b"[[rounds]]\n" * 3000],
)
def test_a_policy_file_that_is_not_toml_is_one_line(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "policy.toml"
    path.write_bytes(content)
    with pytest.raises(PolicyError) as raised:
        load_policy(path)
    assert printable_line(str(raised.value)) and str(path) in str(raised.value)


# ---------------------------------------------------------------------- the command line
@pytest.fixture
def nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A case store of the test's own, and a Temporal address where nothing listens."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/cases.db")
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:9")
    monkeypatch.setenv("SECRETS_KEY_FILE", str(tmp_path / "secrets.key"))
    monkeypatch.chdir(tmp_path)
    assert main(["directory", "import", str(SAMPLES)]) == 0  # clients C100-C300, T100
    return tmp_path


ARG = st.one_of(
    hostile_text, surrogate_text, extreme_dates, st.sampled_from(["A1", "C100", "T100", "T200"])
)
FLAGS = {
    "trigger": ["--appointment", "--client", "--therapist", "--start", "--policy"],
    "arrived": ["--note"],
    "responded": ["--via", "--note"],
    "acknowledge": ["--by", "--note"],
    "reached": ["--outcome", "--note", "--plan", "--fee", "--fee-reason", "--by", "--materials"],
    "note": ["--author", "--text"],
    "show": [],
    "stuck": ["--older-than"],
    "calendar remove": [],
    "calendar schedule": ["--every"],
    "integration add": [],
    "integration remove": [],
    "directory import": [],
    "serve": ["--port", "--host"],
}
POSITIONAL = {
    "arrived",
    "responded",
    "acknowledge",
    "reached",
    "note",
    "show",
    "calendar remove",
    "integration add",
    "integration remove",
    "directory import",
}


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    command = draw(st.sampled_from(sorted(FLAGS)))
    argv = command.split()
    if command in POSITIONAL and draw(st.integers(0, 5)):
        argv.append(draw(ARG))
    for flag in draw(st.lists(st.sampled_from(FLAGS[command] or ["--x"]), max_size=5)):
        argv.append(flag)
        if draw(st.integers(0, 6)):
            argv.append(draw(ARG))
    if draw(st.integers(0, 9)) == 0:
        argv.insert(draw(st.integers(0, len(argv))), draw(ARG))  # a stray argument
    return argv


def _accepted_offline(argv: list[str]) -> bool:
    """Commands that may succeed without Temporal (they only touch the case store)."""
    return argv[:2] in (["integration", "add"], ["serve"]) or argv[:1] == ["serve"]


def test_any_command_line_is_one_line_and_status_2_never_a_traceback(
    nowhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    @FAST
    @given(command_lines())
    @example(["show", "A\udcff"])  # found: a non-UTF-8 argument reached SQLite, a traceback
    @example(["note", "A\udcff", "--author", "a", "--text", "t"])
    @example(
        ["trigger", "--appointment", "A1", "--client", "C\udcff", "--start", "2026-01-01T00:00Z"]
    )
    @example(["calendar", "remove", "x\udcff"])
    @example(["integration", "remove", "x\udcff"])
    @example(["trigger"])  # argparse: usage and error on two lines
    @example(["serve", "--port", "\x1b[31m"])
    @example(["show", "A1\n"])  # found: '$' matched before a trailing newline
    def prop(argv: list[str]) -> None:
        if _accepted_offline(argv):
            return  # `integration add` succeeds offline; `serve` would serve
        status = main(argv)
        out, err = capsys.readouterr()
        assert status == 2, (argv, out, err)
        assert err.startswith("error: ") and err.endswith("\n"), err
        assert "Traceback" not in err
        assert printable_line(err.removesuffix("\n")), err

    prop()


@pytest.mark.parametrize(
    "argv",
    [
        ["trigger", "--appointment", "A" * 300, "--client", "C100", "--start", "2026-11-23T15:00Z"],
        ["trigger", "--appointment", "A1", "--client", "C100", "--start", "0001-01-01T00:00+05:00"],
        ["trigger", "--appointment", "A1", "--client", "C100", "--start", "9999-12-31T23:59-05:00"],
        [
            "trigger",
            "--appointment",
            "A1",
            "--client",
            "C100",
            "--start",
            "2026-11-23T15:00Z",
            "--therapist",
            "T200",
        ],
        ["stuck", "--older-than", "99999999999999999999d"],
        ["calendar", "schedule", "--every", "1000000000d"],
        ["directory", "import", "/"],
        ["calendar", "add", "a", "--ics", "/x", "--mode", "marked", "--floating-tz", "America"],
    ],
)
def test_extreme_arguments_name_the_argument(
    nowhere: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert any(
        word in err
        for word in (
            "appointment_id:",
            "scheduled_start: must be a date between the years 2000 and 2200",
            "is not the therapist",
            "--older-than:",
            "--every:",
            "cannot read",
            "floating_time_zone:",
        )
    ), err


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("WEB_PORT", "abc", "WEB_PORT: Input should be a valid integer"),
        ("PRACTICE_TIME_ZONE", "America", "PRACTICE_TIME_ZONE: not an IANA time zone"),
        ("DATABASE_URL", "nonsense://user:s3cret@host/db", "DATABASE_URL is not a case store URL"),
        (
            "DATABASE_URL",
            "postgresql://user:s3cret@host/db",
            "DATABASE_URL is not a case store URL",
        ),
        ("DATABASE_URL", "sqlite+aiosqlite:////proc/nowhere/cases.db", "cannot create /proc"),
        ("LOG_FORMAT", "s3cret", "LOG_FORMAT: Input should be 'text' or 'json'"),
    ],
)
def test_a_bad_configuration_is_one_line_that_quotes_no_value(
    nowhere: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    said: str,
) -> None:
    """Found: a setting pydantic refused, or a DATABASE_URL SQLAlchemy could not load, was a
    traceback, and pydantic's message quotes the value (a URL's password, a key)."""
    monkeypatch.setenv(variable, value)
    assert main(["list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert said in err and "s3cret" not in err and "Traceback" not in err
