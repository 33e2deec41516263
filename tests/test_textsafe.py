"""provisioner.textsafe.visible: nothing a terminal obeys or hides survives, every value stays on
one line, a value quoted with repr is not escaped twice, and a text without a backslash or `<U+`
reads back from its escaped form exactly."""

from __future__ import annotations

import re
import sys
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner.textsafe import visible

HIDDEN = {"Cc", "Cf", "Zl", "Zp", "Cs", "Cn"}  # what must never reach a terminal raw
BIDI = [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
NAMED = [
    *range(0x20),  # C0, TAB, CR and LF included
    0x7F,  # DEL
    *range(0x80, 0xA0),  # C1, NEL (U+0085) included
    0x2028,
    0x2029,
    *BIDI,
    0x00AD,  # soft hyphen
    0x200B,  # zero-width space
    0x200D,  # zero-width joiner
    0x2060,  # word joiner
    0xFEFF,  # BOM / zero-width no-break space
    0xE0041,  # TAG LATIN CAPITAL LETTER A
    0xDC80,  # a lone surrogate, as surrogateescape makes from byte 0x80
]
FRAGMENTS = ["<", "<U", "U+", "+", ">", "202E", "x1b", "a", " ", "日本", "\u3000", "\u00a0"]

# Reads the escaped form back (the inverse the module promises for texts without \ and <U+).
TOKEN = re.compile(r"\\(t|r|n|x[0-9a-f]{2})|<U\+([0-9A-F]{4,6})>")
UNNAMED = {"t": "\t", "r": "\r", "n": "\n"}


def unescape(shown: str) -> str:
    def one(found: re.Match[str]) -> str:
        if found.group(2):
            return chr(int(found.group(2), 16))
        code = found.group(1)
        return UNNAMED.get(code) or chr(int(code[1:], 16))

    return TOKEN.sub(one, shown)


def hidden_in(shown: str) -> list[str]:
    return [f"U+{ord(c):04X}" for c in shown if unicodedata.category(c) in HIDDEN]


texts = st.lists(
    st.one_of(
        st.sampled_from(["\\", "\\x1b", "\\n", "<U+", "<U+202E>"]),
        st.sampled_from([chr(c) for c in NAMED]),
        st.sampled_from(FRAGMENTS),
        st.characters(codec=None, categories=None),  # any code point, surrogates and unassigned too
    ),
    max_size=40,
).map("".join)


@settings(max_examples=2000, deadline=None)
@given(texts)
def test_no_hidden_character_survives_and_the_text_reads_back(text: str) -> None:
    shown = visible(text)
    assert hidden_in(shown) == [], (text, shown)
    assert "\n" not in shown and "\r" not in shown
    if "\\" not in text and "<U+" not in text:
        assert unescape(shown) == text


@settings(max_examples=1000, deadline=None)
@given(texts)
def test_a_value_quoted_with_repr_is_not_escaped_again(text: str) -> None:
    """Messages quote values with {value!r}; the line is escaped after: once, not twice."""
    assert visible(repr(text)) == repr(text)
    assert visible(f"{text!r} is not a valid domain name") == f"{text!r} is not a valid domain name"


def test_every_hidden_code_point_of_unicode_is_escaped() -> None:
    """Exhaustive over the whole code space of this Python's Unicode database."""
    every = "".join(chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) in HIDDEN)
    assert len(every) > 800_000 and all(chr(c) in every for c in NAMED)  # Cn is most of the code space
    shown = visible(every)
    assert hidden_in(shown) == []
    assert unescape(shown) == every


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Hello, world", "Hello, world"),
        ("請求書 のご案内\u3000(再送)\u00a0é", "請求書 のご案内\u3000(再送)\u00a0é"),  # any script, any space: unchanged
        ("a\x1b[8mb", "a\\x1b[8mb"),
        ("one\r\nVerdict: PASS", "one\\r\\nVerdict: PASS"),
        ("a\tb", "a\\tb"),
        ("\x00\x07\x7f\x85\x9b", "\\x00\\x07\\x7f\\x85\\x9b"),
        ("pay\u202elap.com", "pay<U+202E>lap.com"),
        ("\u2066x\u2069\u061c\u200e\u200f", "<U+2066>x<U+2069><U+061C><U+200E><U+200F>"),
        ("a\u2028b\u2029c", "a<U+2028>b<U+2029>c"),
        ("pay\u200bpal", "pay<U+200B>pal"),
        ("C:\\dir", "C:\\dir"),  # a backslash prints as itself
        ("'\\x1b'", "'\\x1b'"),  # so the repr of an ESC is not escaped twice
        ("<U+202E>", "<U+202E>"),  # the price: the text of an escape looks like the escape
        ("a<b>U+", "a<b>U+"),
        ("[bold]x[/bold] :warning:", "[bold]x[/bold] :warning:"),  # markup is rich's business: printed as Text
    ],
)
def test_examples(text: str, shown: str) -> None:
    assert visible(text) == shown
