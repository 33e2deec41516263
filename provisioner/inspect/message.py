"""Read a saved message: bytes in, header fields out, or a clear error naming the line.

The header section is split by hand (RFC 5322 §2.2, §2.2.3: a field is `name: value`, folded
onto lines that start with white space; an empty line ends the section) so that every field
keeps its position and its raw bytes: DKIM needs the message exactly as received, and the
order of Received and Authentication-Results fields tells which server added what.

Values are decoded for display only: RFC 2047 encoded words (any charset Python knows,
ISO-2022-JP included), raw UTF-8 (RFC 6532), raw ISO-2022-JP escape sequences that some
Japanese mailers still write unencoded, and Shift_JIS as a last resort before Latin-1.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from pathlib import Path

from provisioner.errors import ProvisionError
from provisioner.inspect.text import Text, say

MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # far above Postfix's 10 MB message_size_limit default
MAX_HEADER_BYTES = 1024 * 1024  # Postfix refuses a header over header_size_limit (100 KB) per field
MAX_FIELDS = 10_000
# What is read of a hostile header section, so that any message is answered in well under a
# second: a cap leaves the rest unread and says so in a note (docs/inspect.md, "Input limits").
MAX_RECEIVED = 100  # the newest Received lines; Postfix bounces a message after 50 (hopcount_limit)
MAX_AUTH_RESULTS = 50  # the topmost Authentication-Results and ARC-Authentication-Results fields
MAX_AUTH_RESULTS_BYTES = 32 * 1024  # of all of them together: authres takes ~6 µs a byte
MAX_SIGNATURES = 20  # the topmost DKIM-Signature fields (each one costs a DNS question and a hash)
MAX_PARSED_BYTES = 8 * 1024  # of one field handed to a parser (a real one is under 2 KB)
MAX_ENCODED_WORDS = 1000  # RFC 2047 words decoded in one field; the rest is shown as written
MAX_COMMENT_DEPTH = 32  # nested (comments): authres and email.utils recurse once per level


class MessageUnreadable(ProvisionError):
    """The input is not a message we can read: says where and what to do."""


@dataclass(frozen=True)
class Field:
    """One header field as it stands in the message."""

    index: int  # 0 = the topmost field (the newest one a server prepended)
    line: int  # 1-based line of the field's first line in the input
    name: str  # as written
    raw: str  # the value after the colon, unfolded, not decoded (RFC 2047 words stay encoded)
    value: str  # decoded for display

    @property
    def key(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Message:
    source: str  # file name or "<stdin>" for messages
    data: bytes  # the input exactly, for DKIM
    fields: tuple[Field, ...]
    has_body: bool  # False: only the header section was given
    notes: tuple[Text, ...]  # oddities worth telling the reader (never fatal)
    unread: frozenset[int] = frozenset()  # indexes of fields past a cap: kept in `fields`, left out of all()
    _by_key: dict[str, tuple[Field, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_key: dict[str, list[Field]] = {}
        for f in self.fields:
            if f.index not in self.unread:
                by_key.setdefault(f.key, []).append(f)
        object.__setattr__(self, "_by_key", {k: tuple(v) for k, v in by_key.items()})  # all() in O(1): callers ask per field

    def all(self, name: str) -> list[Field]:
        """The fields of that name that are read, top first (a cap leaves the others unread, with a note)."""
        return list(self._by_key.get(name.lower(), ()))

    def first(self, name: str) -> Field | None:
        found = self.all(name)
        return found[0] if found else None


_FIELD_NAME = re.compile(rb"^[!-9;-~]+\Z")  # RFC 5322 §3.6.8: printable US-ASCII except colon
HEADER_END = re.compile(rb"\r?\n\r?\n")


def read_input(path: str, stdin: object | None = None, max_bytes: int = MAX_MESSAGE_BYTES) -> tuple[str, bytes]:
    """The bytes of FILE, or of standard input for '-'. Refuses more than `max_bytes`."""
    if path == "-":
        buffer = getattr(stdin, "buffer", stdin)
        data = buffer.read(max_bytes + 1)  # type: ignore[union-attr]
        source = "<stdin>"
    else:
        file = Path(path)
        source = path
        try:
            with file.open("rb") as handle:
                data = handle.read(max_bytes + 1)
        except IsADirectoryError:
            raise MessageUnreadable(f"{path}: is a directory, not a message (hint: give one saved message, e.g. message.eml)") from None
        except FileNotFoundError:
            raise MessageUnreadable(f"{path}: no such file (hint: save the message with 'Save as' / 'Show original' as a .eml file)") from None
        except OSError as exc:
            raise MessageUnreadable(f"{path}: cannot read: {exc.strerror}") from None
    if len(data) > max_bytes:
        raise MessageUnreadable(
            f"{source}: larger than {max_bytes // (1024 * 1024)} MB; no mail server accepts a message that size "
            "(hint: --max-size raises the limit; for the headers alone, save only the header section)"
        )
    return source, data


def parse_message(source: str, data: bytes) -> Message:
    """Split the header section into fields. Raises MessageUnreadable with file and line."""
    if not data or data.isspace():
        raise MessageUnreadable(f"{source}: empty input (hint: give a saved message: the whole source, headers first)")
    if b"\0" in HEADER_END.split(data[:MAX_HEADER_BYTES], maxsplit=1)[0]:  # CRLF or LF line ends
        raise MessageUnreadable(f"{source}: binary data, not a message (hint: give the message source as text, e.g. a .eml file, not a .msg or an archive)")
    # Only the header section is split into lines: a 20 MB body is never copied or split.
    head = data[: MAX_HEADER_BYTES + 4096]
    complete = len(head) == len(data)
    lines = head.split(b"\n")
    if not complete:
        lines.pop()  # a partial line: body, or a header section too large (refused below)
    notes: list[Text] = []
    start = 0
    if lines[0].startswith(b"From "):  # mbox separator line ("From sender date"), not a header
        start = 1
        notes.append(say("mbox-line"))
    fields: list[tuple[int, list[bytes]]] = []  # (line number, physical lines)
    header_bytes = 0
    end = None
    last = len(lines) - 1 if complete and lines[-1] == b"" else len(lines)  # a final line end is not an empty line
    for number in range(start, last):
        line = lines[number].rstrip(b"\r")
        header_bytes += len(line) + 1
        if header_bytes > MAX_HEADER_BYTES:
            raise MessageUnreadable(
                f"{source}:{number + 1}: the header section is larger than {MAX_HEADER_BYTES // 1024} KB "
                "(hint: no mail server accepts headers that large; is this really one message?)"
            )
        if line == b"":
            end = number
            break
        if line[:1] in (b" ", b"\t"):
            if not fields:
                raise MessageUnreadable(
                    f"{source}:{number + 1}: the message starts with a continuation line (white space first) "
                    "(hint: the first lines were cut off when the message was copied; save it again as a whole)"
                )
            fields[-1][1].append(line)
            continue
        name, colon, _ = line.partition(b":")
        if not colon or not _FIELD_NAME.match(name.rstrip(b" \t")):
            shown = line[:60].decode("utf-8", "replace")
            raise MessageUnreadable(
                f"{source}:{number + 1}: {shown!r} is not a header field (Name: value) and no empty line came before it "
                "(hint: a message starts with its header fields; if lines were wrapped or cut when copying, save the message source again, e.g. as .eml)"
            )
        fields.append((number + 1, [line]))
        if len(fields) > MAX_FIELDS:
            raise MessageUnreadable(f"{source}:{number + 1}: more than {MAX_FIELDS} header fields (hint: is this really one message?)")
    if end is None and not complete:
        raise MessageUnreadable(
            f"{source}: the header section is larger than {MAX_HEADER_BYTES // 1024} KB "
            "(hint: no mail server accepts headers that large; is this really one message?)"
        )
    if not fields:
        raise MessageUnreadable(f"{source}: no header fields before the first empty line (hint: a message starts with its header fields)")
    has_body = end is not None
    if end is None and not data.endswith(b"\n"):
        notes.append(say("cut-off", line=len(lines)))
    if not has_body:
        notes.append(say("headers-only"))
    parsed = tuple(_field(i, line_no, physical) for i, (line_no, physical) in enumerate(fields))
    if has_body and end is not None:
        boundary = _multipart_boundary(parsed)
        if boundary and data.find(b"--" + boundary.encode("ascii", "replace") + b"--", len(b"\n".join(lines[: end + 1])) + 1) < 0:
            notes.append(say("body-cut-off"))  # RFC 2046 §5.1.1: a multipart body ends with --boundary--
    unread, cap_notes = _caps(parsed)
    return Message(source, data, parsed, has_body, tuple(notes + cap_notes), unread)


# Fields whose value goes to a parser that recurses on (comments) or slows with length: email.utils
# (identity.py), authres (authresults.py). Longer than MAX_PARSED_BYTES, a Received line is read up
# to there (received.py), the others not at all.
_ADDRESS_FIELDS = frozenset(("from", "sender", "return-path"))
AUTH_RESULTS_FIELDS = frozenset(("authentication-results", "arc-authentication-results"))
_RECURSIVE_FIELDS = _ADDRESS_FIELDS | AUTH_RESULTS_FIELDS
_PARSED_FIELDS = _RECURSIVE_FIELDS | frozenset(("received", "content-type"))


def comment_depth(value: str) -> int:
    """How deep (comments) nest in a field value (RFC 5322 §3.2.2), quoted pairs skipped. An
    over-estimate inside quoted strings, which is the safe side for a bound."""
    depth = deepest = 0
    escaped = False
    for c in value:
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif c == ")" and depth:
            depth -= 1
    return deepest


def parsable(value: str) -> bool:
    """Whether a value may go to authres or email.utils: short enough, and not nested so deep
    that they recurse past Python's limit (about 490 '(' is enough)."""
    if len(value) > MAX_PARSED_BYTES:
        return False
    return "(" not in value or comment_depth(value) <= MAX_COMMENT_DEPTH


def _where(found: list[Field]) -> Text:
    first = found[0]
    if len(found) == 1:
        return say("cap-where-one", name=first.name, line=first.line)
    return say("cap-where-many", count=len(found), name=first.name, line=first.line)


def _caps(fields: tuple[Field, ...]) -> tuple[frozenset[int], list[Text]]:
    """Which fields are left unread by a cap, and a note for each cap that applied."""
    unread: set[int] = set()
    notes: list[Text] = []
    received = [f for f in fields if f.key == "received"]
    if len(received) > MAX_RECEIVED:  # the newest are on top; the oldest are dropped
        unread.update(f.index for f in received[MAX_RECEIVED:])
        notes.append(say("cap-received", count=len(received), limit=MAX_RECEIVED))
    signatures = [f for f in fields if f.key == "dkim-signature"]
    if len(signatures) > MAX_SIGNATURES:
        unread.update(f.index for f in signatures[MAX_SIGNATURES:])
        notes.append(say("cap-signatures", count=len(signatures), limit=MAX_SIGNATURES))
    read = budget = 0
    skipped: list[Field] = []
    for f in fields:  # top first: what the trusted servers added is on top and is read first
        if f.key not in AUTH_RESULTS_FIELDS:
            continue
        size = len(f.raw) if parsable(f.raw) else 0  # one not parsed costs nothing (it is shown as unreadable)
        if read >= MAX_AUTH_RESULTS or budget + size > MAX_AUTH_RESULTS_BYTES:
            unread.add(f.index)
            skipped.append(f)
            continue
        read += 1
        budget += size
    if skipped:
        notes.append(say("cap-auth-results", where=_where(skipped), limit=MAX_AUTH_RESULTS, kb=MAX_AUTH_RESULTS_BYTES // 1024))
    long_fields = [f for f in fields if f.index not in unread and f.key in _PARSED_FIELDS and len(f.raw) > MAX_PARSED_BYTES]
    if long_fields:
        notes.append(say("cap-long-field", where=_where(long_fields), limit=MAX_PARSED_BYTES // 1024))
    deep = [f for f in fields if f.index not in unread and f.key in _RECURSIVE_FIELDS and len(f.raw) <= MAX_PARSED_BYTES and not parsable(f.raw)]
    if deep:
        notes.append(say("cap-deep-comments", where=_where(deep), limit=MAX_COMMENT_DEPTH))
    many_words = [f for f in fields if f.raw.count("=?") > MAX_ENCODED_WORDS and _encoded_words(f.raw) > MAX_ENCODED_WORDS]
    if many_words:
        notes.append(say("cap-encoded-words", where=_where(many_words), limit=MAX_ENCODED_WORDS))
    return frozenset(unread), notes


def _multipart_boundary(fields: tuple[Field, ...]) -> str:
    """The boundary of a multipart Content-Type (RFC 2046 §5.1.1), or ''."""
    from email.message import Message as EmailMessage

    content_type = next((f.raw for f in fields if f.key == "content-type"), "")
    if not content_type.lower().startswith("multipart/") or len(content_type) > MAX_PARSED_BYTES:  # email's _parseparam is quadratic in ';'
        return ""
    holder = EmailMessage()
    holder["Content-Type"] = content_type
    boundary = holder.get_param("boundary")
    return boundary if isinstance(boundary, str) else ""


def _field(index: int, line_no: int, physical: list[bytes]) -> Field:
    first = physical[0]
    name, _, rest = first.partition(b":")
    # RFC 5322 §2.2.3: unfolding removes the CRLF before white space; we also drop the white
    # space run to one space, which is what every display does.
    parts = [rest.strip()] + [p.strip() for p in physical[1:]]
    raw_bytes = b" ".join(p for p in parts if p)
    raw = _text(raw_bytes)
    return Field(index, line_no, name.rstrip(b" \t").decode("ascii"), raw, decode_value(raw))


_NOT_EUC = re.compile(rb"[\x80-\x8d\x90-\xa0\xff]")  # bytes EUC-JP never uses; Shift_JIS lead bytes 0x81-0x9F are here


def _text(raw: bytes) -> str:
    """Header bytes to text: UTF-8 (RFC 6532; raw ISO-2022-JP is 7-bit and passes here, see
    decode_value), EUC-JP when only its bytes occur (Unix mailers), Shift_JIS, else Latin-1."""
    try:
        return raw.decode("utf-8")
    except UnicodeError:
        pass
    candidates = ("cp932",) if _NOT_EUC.search(raw) else ("euc_jp", "cp932")  # Shift_JIS: Windows, still met in Japanese mail
    for candidate in candidates:
        try:
            return raw.decode(candidate)
        except UnicodeError:
            continue
    return raw.decode("latin-1")


def decode_value(raw: str) -> str:
    """RFC 2047 encoded words decoded (any charset Python has a codec for, ISO-2022-JP included);
    raw ISO-2022-JP escape sequences in an otherwise ASCII value decoded too. Never raises.
    At most MAX_ENCODED_WORDS words are decoded; the rest stays as written."""
    text = raw
    if "\x1b" in text:
        text = _decode_chunk(text.encode("latin-1", "replace"), "iso-2022-jp")
    if "=?" not in text:
        return text
    return _rfc2047(text)


# RFC 2047 §2: =?charset?encoding?encoded-text?=. The encoded text has no '?' (§4: Q encodes it,
# B has none): with '.*?' as email.header has it, every unterminated word scans to the end.
_ENCODED_WORD = re.compile(r"=\?([^?]*)\?([qQbB])\?([^?]*)\?=")


def _encoded_words(text: str) -> int:
    return sum(1 for _ in _ENCODED_WORD.finditer(text))


def _rfc2047(text: str) -> str:
    """What email.header.decode_header gives, in linear time (it pops from the front of a list
    and concatenates bytes: 60,000 words took 2.4 s): the bytes of adjacent words in one charset
    joined before decoding (a character may be split between two words), white space between two
    encoded words dropped (RFC 2047 §6.2), a word that is not valid base64 shown as written."""
    out: list[str] = []
    run: list[bytes] = []  # bytes of adjacent encoded words in one charset, not yet decoded
    run_charset = ""
    position = 0
    for count, match in enumerate(_ENCODED_WORD.finditer(text)):
        if count >= MAX_ENCODED_WORDS:
            break
        between = text[position : match.start()]
        decoded = _word_bytes(match.group(3), match.group(2).lower())
        charset = match.group(1).lower()
        position = match.end()
        if (run and between.isspace()) or not between:
            between = ""
        if decoded is None or between or charset != run_charset:
            if run:
                out.append(_decode_chunk(b"".join(run), run_charset))
                run = []
            out.append(between)
        if decoded is None:
            out.append(match.group(0))
            continue
        run.append(decoded)
        run_charset = charset
    if run:
        out.append(_decode_chunk(b"".join(run), run_charset))
    out.append(text[position:])
    return "".join(out)


def _word_bytes(encoded: str, encoding: str) -> bytes | None:
    """The bytes of one encoded word's text, or None when it is not valid base64/Q."""
    if encoding == "q":  # RFC 2047 §4.2: '_' is a space, =XX a byte
        data = encoded.replace("_", " ").encode("latin-1", "replace")
        return re.sub(rb"=([0-9A-Fa-f]{2})", lambda m: bytes((int(m.group(1), 16),)), data)
    padded = encoded + "==="[: (4 - len(encoded) % 4) % 4]  # Postel's law, as email.header: add missing padding
    try:
        return base64.b64decode(padded.encode("latin-1", "replace"))
    except (binascii.Error, ValueError):
        return None


def _decode_chunk(chunk: bytes, charset: str | None) -> str:
    if charset in (None, "unknown-8bit"):
        return _text(chunk)
    charset = charset.lower().split("*", 1)[0]  # RFC 2231 language suffix
    candidates = [charset, "utf-8"]
    if charset.startswith("iso-2022-jp"):
        # Mailers write NEC/IBM extensions and half-width kana under the plain name (CP50220/1).
        candidates = [charset, "iso2022_jp_ext", "iso2022_jp_2004", "iso2022_jp_2"]
    elif charset in ("shift_jis", "shift-jis", "sjis", "x-sjis"):
        candidates = ["cp932", charset]
    for candidate in candidates:
        try:
            return chunk.decode(candidate)
        except (LookupError, ValueError):  # ValueError: UnicodeError (idna, punycode, undefined) or a NUL in the name
            continue
    if charset.startswith("iso-2022-jp"):
        decoded = _jis_as_cp932(chunk)
        if decoded is not None:
            return decoded
    return chunk.decode("latin-1")


def _jis_as_cp932(data: bytes) -> str | None:
    """ISO-2022-JP read the way Windows mailers write it (CP50220/CP50221): each JIS X 0208 pair
    mapped to Shift_JIS arithmetically and decoded as CP932, which has the NEC and IBM rows
    (circled numbers, Roman numerals) that Python's ISO-2022-JP codecs refuse."""
    out = bytearray()
    mode = "ascii"
    i = 0
    while i < len(data):
        if data[i] == 0x1B:
            seq = data[i + 1 : i + 3]
            mode = {b"$B": "jis", b"$@": "jis", b"(B": "ascii", b"(J": "ascii", b"(I": "kana"}.get(seq, "")
            if not mode:
                return None
            i += 3
            continue
        if mode == "jis" and data[i] not in (0x0A, 0x0D):
            if i + 1 >= len(data):
                return None
            j1, j2 = data[i], data[i + 1]
            if not (0x21 <= j1 <= 0x7E and 0x21 <= j2 <= 0x7E):  # not a JIS X 0208 pair
                return None
            s1 = (j1 + 1) // 2 + 0x70
            s1 = s1 + 0x40 if s1 >= 0xA0 else s1
            s2 = (j2 + 0x1F + (1 if j2 >= 0x60 else 0)) if j1 % 2 else j2 + 0x7E
            out += bytes((s1, s2))
            i += 2
            continue
        if mode == "kana" and data[i] > 0x5F:  # JIS X 0201 katakana are 0x21-0x5F
            return None
        out.append(data[i] + 0x80 if mode == "kana" and data[i] >= 0x21 else data[i])
        i += 1
    try:
        return out.decode("cp932")
    except UnicodeError:
        return None
