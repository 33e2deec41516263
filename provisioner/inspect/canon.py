"""DKIM body canonicalization (RFC 6376 §3.4.3, §3.4.4) in bounded memory, once per message.

dkimpy's relaxed body canonicalization runs `re.sub` over the whole body at once: on a 9 MB body
the list of pieces it builds peaks at 378 MB, and it runs again for every signature (twenty
signatures varying c= and l=: 6 s). Here the body is canonicalized a block of whole lines at a
time (no run of white space crosses a line end, so blocks that end at one give the same bytes), and
the last result per algorithm is kept for the same body object, so a message costs one pass per
algorithm whatever its signatures say. `install()` puts these in dkimpy's place; the output is
byte for byte dkimpy's (tests/inspect/test_hostile_input.py compares them).
"""

from __future__ import annotations

import re

BLOCK = 1024 * 1024  # bytes of body canonicalized at once: the transient pieces of one block stay small
_TRAILING_WSP = re.compile(rb"[\t ]+\r\n")  # RFC 6376 §3.4.4 (a): white space at the end of a line
_WSP_RUN = re.compile(rb"[\t ]+")  # §3.4.4 (b): a run of white space is one space

_last: dict[str, tuple[bytes, bytes]] = {}  # algorithm -> (the body, its canonical form): identity, never equality


def relaxed_lines(body: bytes) -> bytes:
    """§3.4.4 (a) and (b) over the body, block by block; the trailing empty lines are left to
    dkimpy's own strip_trailing_lines / correct_empty_body."""
    out: list[bytes] = []
    start, size = 0, len(body)
    while start < size:
        cut = body.find(b"\n", min(start + BLOCK, size))
        end = size if cut < 0 else cut + 1
        out.append(_WSP_RUN.sub(b" ", _TRAILING_WSP.sub(b"\r\n", body[start:end])))
        start = end
    return b"".join(out)


def install() -> None:
    """Replace dkimpy's body canonicalizations with the bounded, remembered ones (idempotent)."""
    from dkim import canonicalization as dkim_canon

    if getattr(dkim_canon.Relaxed.canonicalize_body, "bounded", False):
        return
    strip_trailing_lines = dkim_canon.strip_trailing_lines
    correct_empty_body = dkim_canon.correct_empty_body

    def remembered(name: str, canonicalize):  # type: ignore[no-untyped-def]
        def body_of(body: bytes) -> bytes:
            last = _last.get(name)
            if last is not None and last[0] is body:
                return last[1]
            result: bytes = canonicalize(body)
            _last[name] = (body, result)
            return result

        body_of.bounded = True  # type: ignore[attr-defined]
        return staticmethod(body_of)

    dkim_canon.Simple.canonicalize_body = remembered("simple", strip_trailing_lines)
    dkim_canon.Relaxed.canonicalize_body = remembered("relaxed", lambda body: correct_empty_body(strip_trailing_lines(relaxed_lines(body))))
