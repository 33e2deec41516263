"""`provision inspect` prints a sender's text, never obeys it: a Subject, display name, Received
or Authentication-Results field that decodes to ESC, CR, LF, C1 or bidi controls stays on its
line with the controls shown as escapes, so it can neither print a fake verdict nor hide the real
one. The JSON report carries the exact text."""

from __future__ import annotations

import base64
import json
import re
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner.inspect import Trust, inspect_message, inspection_text, parse_message
from tests.inspect.test_cli import inspect

HIDDEN = {"Cc", "Cf", "Zl", "Zp", "Cs", "Cn"}
FAKE = "\x1b[8m\r\nVerdict: PASS: authentic\r\n"  # hides what follows, then forges a verdict line
HOSTILE = ["\x1b", "\r", "\n", "\t", "\x00", "\x07", "\x7f", "\x85", "\x9b", "\u2028", "\u2029", "\u202e", "\u2066", "\u200f", "\u061c", "\ufeff"]


def encoded(text: str) -> str:
    """An RFC 2047 encoded word: any character, including controls, reaches the decoder."""
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


def message(subject: str, display: str = "Bank Support", helo: str = "mail.evil.test", reason: str = "ok") -> bytes:
    return (
        f"Authentication-Results: mx.recipient.test; spf=pass reason=\"{reason}\" smtp.mailfrom=ceo@bank.test\r\n"
        f"Received: from {helo} (mail.evil.test [203.0.113.5]) by mx.recipient.test with ESMTP; Mon, 23 Nov 2026 10:00:02 +0000\r\n"
        f"From: {encoded(display)} <ceo@bank.test>\r\n"
        f"Subject: {encoded(subject)}\r\n"
        "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nbody\r\n"
    ).encode("utf-8", "surrogateescape")


def verdict_lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if re.match(r"\s*(Verdict|判定)\s*:", line)]


def test_a_subject_cannot_forge_or_hide_the_verdict() -> None:
    raw = message(FAKE + "Invoice \u202eFDP.exe", display="Bank\u2028\x85Support\x1b]8;;https://evil.test\x07")
    done = inspect("-", stdin=raw)
    assert done.returncode == 3, done.stderr
    out = done.stdout.decode()
    assert verdict_lines(out) == ["Verdict: UNKNOWN"]
    assert b"\x1b" not in done.stdout and b"\r" not in done.stdout and b"\xc2\x85" not in done.stdout
    assert "  Subject: \\x1b[8m\\r\\nVerdict: PASS: authentic\\r\\nInvoice <U+202E>FDP.exe\n" in out
    assert "  From: Bank<U+2028>\\x85Support\\x1b]8;;https://evil.test\\x07 <ceo@bank.test>\n" in out

    for lang in ("en", "ja"):
        shown = inspect("-", "--lang", lang, stdin=raw).stdout.decode()
        assert len(verdict_lines(shown)) == 1 and not [c for c in shown if unicodedata.category(c) in HIDDEN and c != "\n"]

    report = json.loads(inspect("-", "--format", "json", stdin=raw).stdout)
    assert report["subject"] == FAKE + "Invoice \u202eFDP.exe"  # JSON: the exact text
    assert report["from"][0]["display"] == "Bank\u2028\x85Support\x1b]8;;https://evil.test\x07"


hostile_text = st.lists(st.one_of(st.sampled_from(HOSTILE), st.sampled_from(["Verdict: PASS", "[bold]", "\\", "<U+202E>", "a", " "]), st.characters()), max_size=30).map(
    "".join
)
raw_ascii = st.lists(st.sampled_from(["\x1b", "\x07", "\x01", "\x7f", "\t", "[8m", "a", "\\"]), min_size=1, max_size=10).map("".join)


@settings(max_examples=300, deadline=None)
@given(subject=hostile_text, display=hostile_text, helo=raw_ascii, reason=raw_ascii)
def test_every_text_line_is_clean_whatever_the_headers_decode_to(subject: str, display: str, helo: str, reason: str) -> None:
    """The class: decoded words and raw header bytes in every field the report quotes."""
    inspection = inspect_message(parse_message("<hostile>", message(subject, display, helo, reason)), Trust.of(["mx.recipient.test"]))
    for lang in ("en", "ja"):
        text = inspection_text(inspection, lang)
        assert [c for c in text if unicodedata.category(c) in HIDDEN and c != "\n"] == []
        assert len(verdict_lines(text)) == 1
