"""The Received chain (RFC 5321 §4.4 Time-stamp-line, RFC 5322 §3.6.7) as hops in order.

Each server that takes a message prepends one Received field, so the bottom field is the first
hop and the top one the last. A field is read with a small tokenizer for RFC 5322's lexical
parts (comments nest, quoted strings, domain literals, angle addresses), then split into the
clauses RFC 5321 names: from, by, via, with, id, for, and the date after the last ';'. The
comment after `from` is where the receiving server wrote what it saw itself: the address of
the connection and its reverse name (`mx.example (mx.example [192.0.2.1])` in Postfix and
Sendmail, `name ([192.0.2.1] helo=x)` in Exim); the name after `from` is often only what the
client said in HELO, which anybody can choose.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import ipaddress
from dataclasses import dataclass
from dataclasses import field as default
from enum import StrEnum

from provisioner.inspect.message import MAX_PARSED_BYTES, MAX_RECEIVED, Field
from provisioner.inspect.text import Text, say

CLOCK_SKEW = dt.timedelta(minutes=5)  # differences below this are clocks, not forgery


class TokenKind(StrEnum):
    WORD = "word"
    COMMENT = "comment"
    SEMICOLON = "semicolon"


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str


def tokenize(value: str) -> list[Token]:
    """RFC 5322 §3.2: atoms and dot-atoms, quoted strings, [domain literals], <angle addresses>
    and (nested (comments)) as tokens; ';' on its own. Unbalanced input is taken as far as it goes."""
    tokens: list[Token] = []
    i, n = 0, len(value)
    while i < n:
        c = value[i]
        if c in " \t\r\n":
            i += 1
        elif c == ";":
            tokens.append(Token(TokenKind.SEMICOLON, ";"))
            i += 1
        elif c == "(":
            depth, j = 0, i
            while j < n:
                if value[j] == "\\":
                    j += 2
                    continue
                if value[j] == "(":
                    depth += 1
                elif value[j] == ")":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            tokens.append(Token(TokenKind.COMMENT, value[i + 1 : j].strip()))
            i = j + 1
        else:
            j = i
            closing = {'"': '"', "[": "]", "<": ">"}
            while j < n and value[j] not in " \t\r\n;(":
                if j == i and value[j] in closing:  # an opener only at a word's start: a HELO of `a[` must not swallow the comment
                    end = value.find(closing[value[j]], j + 1)
                    j = n if end < 0 else end + 1
                    continue
                j += 1
            tokens.append(Token(TokenKind.WORD, value[i:j]))
            i = j
    return tokens


CLAUSES = ("from", "by", "via", "with", "id", "for")


@dataclass
class Hop:
    """One Received field, read."""

    field: Field
    number: int = 0  # 1 = the first hop (the bottom field)
    from_name: str = ""  # the name after `from`: HELO, or the reverse name in Exim's layout
    helo: str = ""  # what the client said in HELO/EHLO, where the line tells
    reverse_name: str = ""  # the connecting address's reverse name as the receiver saw it
    reverse_unknown: bool = False  # the receiver found no reverse name ("unknown")
    reverse_forged: bool = False  # the receiver said the reverse name does not resolve back ("may be forged")
    ip: str = ""  # the connecting address
    by: str = ""
    with_protocol: str = ""  # SMTP, ESMTP, ESMTPS, ESMTPSA, LMTP, HTTP, ... (RFC 3848, 6531)
    tls: str = ""  # e.g. "TLSv1.3 TLS_AES_256_GCM_SHA384", "yes" (from the protocol), "" none seen
    queue_id: str = ""
    recipient: str = ""
    envelope_from: str = ""
    time: dt.datetime | None = None
    time_text: str = ""
    comments: list[str] = default(default_factory=list)
    delay: dt.timedelta | None = None  # since the hop before
    problems: list[Text] = default(default_factory=list)

    @property
    def authenticated(self) -> bool:
        """RFC 3848: ESMTPA / ESMTPSA mean the client logged in (SMTP AUTH)."""
        return self.with_protocol.upper() in ("ESMTPA", "ESMTPSA", "UTF8SMTPA", "UTF8SMTPSA", "LMTPA", "LMTPSA")

    @property
    def local(self) -> bool:
        """The connection came from this machine (loopback) or had no address at all."""
        if not self.ip:
            return True
        try:
            return ipaddress.ip_address(self.ip).is_loopback
        except ValueError:
            return False


def _strip_dot(name: str) -> str:
    return name.rstrip(".").lower()


def _as_ip(text: str) -> str:
    """An address from `[192.0.2.1]`, `[IPv6:2001:db8::1]`, `192.0.2.1` or `2001:db8::1`, else ''."""
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]  # Exim: [192.0.2.1]:54321 (the client's port after the literal)
    if text.lower().startswith("ipv6:"):
        text = text[5:]
    try:
        return str(ipaddress.ip_address(text.split("%", 1)[0]))
    except ValueError:
        return ""


def _from_comment(hop: Hop, comment: str) -> None:
    """What the receiver recorded about the connection, in the layouts MTAs write."""
    tokens = tokenize(comment)
    if any(t.kind is TokenKind.COMMENT and "forged" in t.text.lower() for t in tokens):
        hop.reverse_forged = True  # Sendmail: `(name [ip] (may be forged))`: the name does not resolve back
    helo_next = False
    for token in tokens:
        if token.kind is TokenKind.COMMENT:
            continue
        word = token.text.rstrip(",")
        lower = word.lower()
        if helo_next:  # qmail: from rdns (HELO name) (ip)
            hop.helo, helo_next = _strip_dot(word), False
            continue
        if lower == "helo":
            helo_next = True
            continue
        if lower.startswith("helo="):  # Exim: from rdns ([ip] helo=name)
            hop.helo = _strip_dot(word[5:])
            continue
        ip = _as_ip(word)
        if ip:
            hop.ip = hop.ip or ip
        elif lower == "unknown":
            hop.reverse_unknown = True
        elif "." in word and not hop.reverse_name and "=" not in word:
            hop.reverse_name = _strip_dot(word)


def _tls_from_comment(comment: str) -> str:
    """Postfix `using TLSv1.3 with cipher X`, Microsoft `version=TLS1_2, cipher=X`, Exim `TLS1.3`."""
    words = [w.strip(",") for w in comment.replace("=", " = ").split()]
    version, cipher = "", ""
    for i, word in enumerate(words):
        upper = word.upper()
        if not version and upper.startswith(("TLSV1", "TLS1", "SSLV3")):
            version = word.replace("_", ".")
        if word.lower() == "cipher" and i + 1 < len(words):
            cipher = words[i + 2] if words[i + 1] == "=" and i + 2 < len(words) else words[i + 1]
    return f"{version} {cipher}".strip() if version else ""


def parse_received(received: Field) -> Hop:
    hop = Hop(received)
    raw = received.raw[:MAX_PARSED_BYTES]  # a real line is a few hundred bytes; parse_message notes a cut one
    tokens = tokenize(raw)
    # the date: after the last ';' (RFC 5321 §4.4); a ';' inside a comment is not one
    semis = [i for i, t in enumerate(tokens) if t.kind is TokenKind.SEMICOLON]
    if semis:
        date_text = raw[raw.rfind(";") + 1 :].strip()[:200]
        tokens = tokens[: semis[-1]]
        hop.time_text = date_text
        try:
            hop.time = email.utils.parsedate_to_datetime(date_text)
        except (TypeError, ValueError, IndexError, OverflowError):  # a year or zone offset no clock has
            hop.time = None
        if hop.time is not None and hop.time.tzinfo is None:
            hop.time = hop.time.replace(tzinfo=dt.UTC)  # RFC 5322 §3.3: -0000 means UTC, zone unknown
    clause = ""
    protocol: list[str] = []
    for token in tokens:
        if token.kind is TokenKind.COMMENT:
            hop.comments.append(token.text)
            if clause == "from" and not hop.ip:
                _from_comment(hop, token.text)
            if clause == "with" and protocol:
                clause = "with-done"  # `with Microsoft SMTP Server (version=...)`: the name ends at the comment
            tls = _tls_from_comment(token.text)
            if tls and not hop.tls:
                hop.tls = tls
            lower = token.text.lower()
            if lower.startswith("envelope-from"):
                hop.envelope_from = token.text.split(None, 1)[1].strip("<>") if " " in token.text else ""
            continue
        if token.kind is not TokenKind.WORD:
            continue
        lower = token.text.lower()
        naming = clause == "from" and not hop.from_name  # the name after `from` is the HELO, whatever it is: `EHLO by` is a valid name
        if lower in CLAUSES and not naming:
            clause = lower
            continue
        if naming:
            hop.from_name = _strip_dot(token.text)
            ip = _as_ip(token.text)
            if ip:  # `from [192.0.2.1]`: the client said an address literal in HELO
                hop.helo = hop.helo or hop.from_name
        elif clause == "by" and not hop.by:
            hop.by = _strip_dot(token.text)
        elif clause == "with" and len(protocol) < 4:
            protocol.append(token.text)  # one word (ESMTPS), or a product name (Microsoft SMTP Server)
        elif clause == "id" and not hop.queue_id:
            hop.queue_id = token.text.strip("<>")
        elif clause == "for" and not hop.recipient:
            hop.recipient = token.text.strip("<>")
    hop.with_protocol = " ".join(protocol)
    if not hop.ip and _as_ip(hop.from_name):
        hop.ip = _as_ip(hop.from_name)  # Exim: `from [192.0.2.1] (helo=x)`: the address it saw, as a literal
        hop.helo = "" if hop.helo == hop.from_name else hop.helo
    if hop.helo and not hop.reverse_name and hop.from_name and not _as_ip(hop.from_name) and hop.helo != hop.from_name:
        if hop.from_name == "unknown":  # qmail: `from unknown (HELO name) (ip)`
            hop.reverse_unknown = True
        else:
            hop.reverse_name = hop.from_name  # Exim: `from rdns ([ip] helo=name)`, qmail: `from rdns (HELO name) (ip)`
    if not hop.helo and hop.from_name:
        hop.helo = hop.from_name
    if not hop.tls and hop.with_protocol.upper().rstrip("A").endswith("S") and hop.with_protocol.upper() not in ("SMTPS",):
        hop.tls = "yes"  # ESMTPS, ESMTPSA, LMTPS, UTF8SMTPS: RFC 3848 / RFC 6531 say TLS was used
    if not hop.tls and hop.with_protocol.upper() == "SMTPS":
        hop.tls = "yes"  # implicit TLS (port 465), as Gmail writes it
    if hop.reverse_name and hop.reverse_name == _strip_dot(hop.ip):
        hop.reverse_name = ""
    return hop


def read_chain(received: list[Field]) -> list[Hop]:
    """Hops oldest first, with delays and the problems a postmaster would point at. Only the
    newest MAX_RECEIVED lines (the topmost fields) are read; parse_message notes a longer chain."""
    hops = [parse_received(f) for f in reversed(received[:MAX_RECEIVED])]
    previous_time: dt.datetime | None = None
    for number, hop in enumerate(hops, 1):
        hop.number = number
        if hop.time is None:
            hop.problems.append(say("hop-bad-time", text=repr(hop.time_text)) if hop.time_text else say("hop-no-time"))
        elif previous_time is not None:
            hop.delay = hop.time - previous_time
            if hop.delay < -CLOCK_SKEW:
                hop.problems.append(say("hop-chronology", span=_span(-hop.delay)))
            elif hop.delay < dt.timedelta(0):
                hop.problems.append(say("hop-skew", span=_span(-hop.delay)))
        if hop.time is not None:
            previous_time = hop.time
        _identity(hop)
    return hops


def _identity(hop: Hop) -> None:
    """RFC 5321 §4.4: the receiver records the name the client gave and what it found itself."""
    if hop.local:
        return
    if hop.reverse_unknown:
        hop.problems.append(say("hop-no-ptr", ip=hop.ip))
        return
    if hop.reverse_forged and hop.reverse_name:
        hop.problems.append(say("hop-not-confirmed", ip=hop.ip, names=hop.reverse_name))
        return
    claimed = hop.helo
    if not claimed or _as_ip(claimed) or not hop.reverse_name:
        return
    if claimed != hop.reverse_name:
        hop.problems.append(say("hop-helo-mismatch", helo=claimed, ip=hop.ip, name=hop.reverse_name))


def _span(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def span(delta: dt.timedelta | None) -> str:
    """A delay for display: '3 s', '-2 min', '' when unknown."""
    if delta is None:
        return ""
    return ("-" if delta < dt.timedelta(0) else "") + _span(abs(delta))
