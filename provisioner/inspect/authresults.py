"""Authentication-Results (RFC 8601) and ARC-Authentication-Results (RFC 8617 §4.1.1), parsed
by `authres` (the grammar, comments and quoting included), then judged for trust.

RFC 8601 §5 and §7.1: a result is only worth something when it was added by a server the
reader trusts, named by its authserv-id; anybody can write such a header into a message
before sending it. Untrusted results are shown, never counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.inspect.message import AUTH_RESULTS_FIELDS, MAX_COMMENT_DEPTH, MAX_PARSED_BYTES, Field, Message, parsable
from provisioner.inspect.text import Text, say


@dataclass(frozen=True)
class Property:
    ptype: str  # smtp, header, body, policy
    name: str  # mailfrom, d, s, from, ...
    value: str

    def __str__(self) -> str:
        return f"{self.ptype}.{self.name}={self.value}"


@dataclass(frozen=True)
class MethodResult:
    method: str  # spf, dkim, dmarc, arc, iprev, auth, ...
    result: str  # pass, fail, none, ...
    reason: str
    properties: tuple[Property, ...]

    def prop(self, ptype: str, name: str) -> str:
        for p in self.properties:
            if p.ptype == ptype and p.name == name:
                return p.value
        return ""


@dataclass(frozen=True)
class AuthResults:
    field: Field
    arc_instance: int | None  # i= of an ARC-Authentication-Results field
    authserv_id: str
    results: tuple[MethodResult, ...]
    error: str  # the parser's complaint when the field could not be read ("" when it was)
    trusted: bool
    trust_note: Text  # why it is or is not trusted


def parse_authres(value: str) -> tuple[str, tuple[MethodResult, ...], str]:
    """(authserv-id, results, error) of one Authentication-Results value. Never raises.

    authres copies the rest of the text for every token (quadratic, ~6 µs a byte) and recurses
    once per nested comment: a value too long or nested too deep is refused before it gets there."""
    import authres
    import authres.arc
    import authres.dmarc

    if not parsable(value):
        why = f"longer than {MAX_PARSED_BYTES // 1024} KB" if len(value) > MAX_PARSED_BYTES else f"comments nested deeper than {MAX_COMMENT_DEPTH}"
        return _authserv_guess(value), (), f"not read: {why}"
    context = authres.FeatureContext(authres.dmarc, authres.arc)
    try:
        header = context.parse_value(value)
    except authres.AuthResError as exc:
        return _authserv_guess(value), (), str(exc)
    except (ValueError, IndexError, AttributeError, KeyError, TypeError, RecursionError) as exc:  # authres on input it did not foresee
        return _authserv_guess(value), (), f"cannot be parsed ({type(exc).__name__})"
    results = tuple(
        MethodResult(
            str(r.method).lower(),
            str(r.result).lower(),
            str(r.reason or ""),
            tuple(Property(str(p.type).lower(), str(p.name).lower(), str(p.value)) for p in r.properties),
        )
        for r in header.results
    )
    return str(header.authserv_id).lower(), results, ""


def _authserv_guess(value: str) -> str:
    """For a field authres refuses: the text up to the first ';', to show whose it claims to be."""
    return value[:200].split(";", 1)[0].strip().split(" ", 1)[0].lower()[:100]


def _arc_instance(value: str) -> tuple[int | None, str]:
    """RFC 8617 §4.1.1: ARC-Authentication-Results starts with `i=N;` before the authserv-id."""
    head, sep, rest = value.partition(";")
    tag, eq, number = head.strip().partition("=")
    if sep and eq and tag.strip().lower() == "i" and number.strip().isdigit():
        return int(number.strip()), rest
    return None, value


def read_authentication_results(
    message: Message, trusted_ids: frozenset[str], trusted_above: int | None, border_strips: str | None = None
) -> list[AuthResults]:
    """Every Authentication-Results and ARC-Authentication-Results field, top to bottom.

    `trusted_ids`: authserv-ids the user trusts (lower case). `trusted_above`: the field index of
    the Received line added where the message entered the trusted servers; None when no trusted
    server wrote a Received line (then nothing is trusted). A server prepends its results above
    its own Received line (OpenDKIM behind Postfix does: seen on the test network), so a field
    below that line was already in the message when it arrived, whatever authserv-id it claims.
    RFC 8601 §5 has the border remove such fields, but OpenDKIM removes only those with a dkim
    result: a forged `spf=pass; dmarc=pass` under the border's own name gets through and lands
    right below its Received line.

    `border_strips`: the border's authserv-id when the border removes every field a message
    arrives with before it adds its own (our MX hosts: rspamd's milter_headers, `remove = 0`).
    Its field may stand below its own Received line (Postfix places a milter's field there: seen
    on Postfix 3.10 with rspamd 3.12), and one that claims its id can only be its own.
    """
    out: list[AuthResults] = []
    for field in message.fields:
        if field.key not in AUTH_RESULTS_FIELDS or field.index in message.unread:  # past a cap (a note says so)
            continue
        instance, value = _arc_instance(field.raw) if field.key.startswith("arc-") else (None, field.raw)
        authserv_id, results, error = parse_authres(value)
        trusted, note = False, say("ar-untrusted")
        if authserv_id in trusted_ids:
            if trusted_above is None:
                note = say("ar-no-received", authserv=authserv_id)
            elif field.index > trusted_above and authserv_id != border_strips:
                note = say("ar-forged", authserv=authserv_id)
            elif error:
                note = say("ar-unreadable")
            else:
                trusted, note = True, say("ar-trusted")
        out.append(AuthResults(field, instance, authserv_id, results, error, trusted, note))
    return out
