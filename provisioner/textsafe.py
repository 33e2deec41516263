r"""Others' text made safe for one terminal line (below every layer: any module may import it).

A message header, a DNS answer, a site file key or a host's task output can carry characters
that a terminal obeys instead of showing: ESC starts a control sequence (`ESC[8m` hides the
rest of the screen, `ESC]8;;` makes a link), CR and LF start a forged line, a bidi override
(U+202E) prints text in another order than it is stored (Unicode TR #36 §2.2, CVE-2021-42574),
a zero-width or soft hyphen hides a difference between two names. `visible` shows each of them
as a visible escape, so every value stays on its line and reads as stored:

- TAB, CR, LF: ``\t``, ``\r``, ``\n``;
- every other C0 control, DEL and the C1 controls (NEL U+0085 included): ``\x1b`` style;
- format characters (Unicode category Cf: bidi marks, embeddings, overrides and isolates,
  U+061C, zero-width characters, soft hyphen, BOM, tags), line and paragraph separators
  (U+2028, U+2029), lone surrogates (from undecodable bytes) and unassigned code points:
  ``<U+202E>`` style (4 to 6 upper-case hex digits).

Letters, marks and spaces of any script (an ideographic space, a no-break space) and the
backslash print as they are. The escapes read like Python's repr, which is how messages quote a
value (`{value!r}`): repr's output has no character to escape, so `visible` leaves it as it is
and a quoted value is never escaped twice (``'\x1b'`` stays ``'\x1b'``, not ``'\\x1b'``). The
price, chosen knowingly: the four characters ``\x1b`` (or ``<U+202E>``) in the text look like an
escaped ESC (or U+202E). Texts without a backslash or ``<U+`` are always told apart; JSON output
carries the exact characters where that matters.

This is for text only. JSON output carries the exact characters (JSON escapes them itself), and
rich must print the result as plain text (a `Text`, or `markup=False, emoji=False`), never as
markup: ``[link=...]`` and ``:emoji:`` in others' data are data.
"""

from __future__ import annotations

import unicodedata

# Categories a terminal may act on or render invisibly: controls, format characters, line and
# paragraph separators, surrogates, unassigned (a newer terminal may know them as format ones).
_HIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Cn"})
_NAMED = {"\t": "\\t", "\r": "\\r", "\n": "\\n"}


class _Escapes(dict[int, str]):
    """str.translate table filled on first sight of each character (translate runs in C)."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        if char in _NAMED:
            shown = _NAMED[char]
        elif code < 0xA0 and unicodedata.category(char) == "Cc":  # C0, DEL, C1
            shown = f"\\x{code:02x}"
        elif unicodedata.category(char) in _HIDDEN:
            shown = f"<U+{code:04X}>"
        else:
            shown = char
        self[code] = shown
        return shown


_ESCAPES = _Escapes()


def visible(text: str) -> str:
    """`text` on one terminal line, with every control, format or separator character shown as
    an escape (see the module docstring); printable text, of any script, is returned unchanged."""
    if text.isprintable():  # false for every character we escape (and for some we keep): C-fast
        return text
    return text.translate(_ESCAPES)
