"""`check --tls`: the MTA-STS policy a sender would fetch, judged against what DNS and the site say.

For each domain whose MTA-STS mode is not none: connect to the web host's address, with SNI
mta-sts.<domain>, verify the certificate for that name (the system trust store, or `--ca`), send
`GET /.well-known/mta-sts.txt` (RFC 8461 §3.3), read at most 64 KiB within a time bound, parse it
(RFC 8461 §3.2) and judge: fetched (200, no redirect followed, text/plain), valid, the id the
`_mta-sts` TXT record announces is the policy's (ids here are a hash of the policy text,
dns/records.py:mta_sts_id), the mode is the site's, and its mx patterns cover every MX name.

Everything the server sends is hostile: the size and the time are bounded, nothing is decoded
beyond ASCII/UTF-8, and values reach findings as stored (the report escapes them).
"""

from __future__ import annotations

import re
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from provisioner.check.findings import Category, Finding, Severity
from provisioner.check.tls import name_matches
from provisioner.dns.records import mta_sts_id, mta_sts_policy
from provisioner.mailauth.resolver import Resolver
from provisioner.site.model import Site
from provisioner.site.types import MtaStsMode

CATEGORY = Category.MTA_STS
POLICY_PATH = "/.well-known/mta-sts.txt"
BODY_LIMIT = 64 * 1024  # RFC 8461 §3.3: senders may limit the policy size; 64 KiB is the common bound
HEAD_LIMIT = 16 * 1024  # status line and headers
MAX_AGE_LIMIT = 31557600  # RFC 8461 §3.2: max_age at most one year
_EXTENSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")  # RFC 8461 §3.2 sts-policy-ext-name
_MX_PATTERN = re.compile(r"(\*\.)?([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9-]{1,63}\.?")
_SHOWN = 120  # characters of a server's value a finding quotes


def policy_url(domain: str) -> str:
    return f"https://mta-sts.{domain}{POLICY_PATH}"


def _clip(value: str) -> str:
    return value if len(value) <= _SHOWN else value[:_SHOWN] + "…"


# ---------------------------------------------------------------------------- fetching


@dataclass(frozen=True)
class Fetched:
    """What the HTTPS request got: a body, or why there is none."""

    body: bytes = b""
    content_type: str = ""
    error: str = ""


def policy_context(ca: str | None) -> ssl.SSLContext:
    """Verify as a sender must (RFC 8461 §3.3): the chain, and the name mta-sts.<domain>."""
    ctx = ssl.create_default_context(cafile=ca) if ca is not None else ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _read_all(sock: ssl.SSLSocket, deadline: float, limit: int) -> tuple[bytes, str]:
    """Everything until the server closes, at most `limit` bytes, before `deadline`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return b"".join(chunks), "no complete answer in time"
        sock.settimeout(left)
        try:
            chunk = sock.recv(min(16384, limit + 1 - size))
        except ssl.SSLZeroReturnError:
            chunk = b""
        except TimeoutError:  # the deadline, reached inside recv
            return b"".join(chunks), "no complete answer in time"
        if not chunk:
            return b"".join(chunks), ""
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks), f"the answer is larger than {BODY_LIMIT // 1024} KiB"


def fetch_policy(address: str, port: int, domain: str, ctx: ssl.SSLContext, timeout: float) -> Fetched:
    """GET the policy of `domain` from `address`:`port` (HTTP/1.0: no chunking, the server closes).
    `timeout` bounds each connect and the whole exchange; never raises for what a server does."""
    name = f"mta-sts.{domain}"
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((address, port), timeout=timeout) as raw, ctx.wrap_socket(raw, server_hostname=name) as sock:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            sock.sendall(f"GET {POLICY_PATH} HTTP/1.0\r\nHost: {name}\r\nUser-Agent: provision-check\r\nAccept: text/plain\r\n\r\n".encode("ascii"))
            data, error = _read_all(sock, deadline, HEAD_LIMIT + BODY_LIMIT)
    except ssl.SSLCertVerificationError as exc:
        return Fetched(error=f"certificate not valid for {name}: {_clip(exc.verify_message or str(exc))}")
    except ssl.SSLError as exc:
        return Fetched(error=f"TLS handshake failed: {_clip(str(exc.reason or exc))}")
    except ConnectionRefusedError:
        return Fetched(error=f"connection refused at {address}:{port}")
    except TimeoutError:
        return Fetched(error="no answer (timed out)")
    except OSError as exc:
        return Fetched(error=_clip(exc.strerror or str(exc)))
    if error and not data:
        return Fetched(error=error)
    return _response(data, error)


def _response(data: bytes, read_error: str) -> Fetched:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    if not sep:
        if len(data) > HEAD_LIMIT:
            return Fetched(error=f"no end of the HTTP headers in the first {HEAD_LIMIT // 1024} KiB")
        return Fetched(error=read_error or ("connection closed before an HTTP answer" if not data else "connection closed inside the HTTP headers"))
    lines = head.decode("latin-1").replace("\r\n", "\n").split("\n")
    status = lines[0].split(None, 2)
    if len(status) < 2 or not status[0].startswith("HTTP/") or not status[1].isdigit():
        return Fetched(error=f"not an HTTP answer: {_clip(lines[0])!r}")
    if status[1] != "200":  # RFC 8461 §3.3: 3xx redirects must not be followed
        return Fetched(error=f"HTTP {_clip(' '.join(status[1:]))}" + (" (a redirect: senders do not follow it, RFC 8461 §3.3)" if status[1][0] == "3" else ""))
    headers: dict[str, str] = {}
    for line in lines[1:]:
        key, colon, value = line.partition(":")
        if colon:
            headers.setdefault(key.strip().lower(), value.strip())
    if read_error:
        return Fetched(error=read_error)
    if len(body) > BODY_LIMIT:
        return Fetched(error=f"the policy is larger than {BODY_LIMIT // 1024} KiB")
    length = headers.get("content-length", "")
    if length.isdigit() and int(length) != len(body):
        return Fetched(error=f"connection closed early: {len(body)} of {length} bytes")
    if headers.get("transfer-encoding", "").lower() not in ("", "identity"):
        return Fetched(error=f"transfer-encoding {_clip(headers['transfer-encoding'])!r} in the answer to an HTTP/1.0 request")
    return Fetched(body, headers.get("content-type", ""))


# ---------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Policy:
    """RFC 8461 §3.2 fields; `errors` says why the policy is invalid (empty: valid)."""

    version: str = ""
    mode: str = ""
    max_age: int | None = None
    mx: tuple[str, ...] = ()
    errors: tuple[str, ...] = field(default=())


def parse_policy(body: bytes) -> Policy:
    """Key/value lines ended by LF or CRLF; the first of a repeated field counts (mx repeats);
    unknown fields are ignored (§3.2). Controls or non-ASCII bytes make it invalid."""
    errors: list[str] = []
    fields: dict[str, str] = {}
    mx: list[str] = []
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError as exc:
        return Policy(errors=(f"not ASCII text (byte {exc.start})",))
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, raw in enumerate(lines, 1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if not line.strip():
            continue
        if any(ord(c) < 0x20 and c != "\t" or ord(c) == 0x7F for c in line):
            errors.append(f"line {number}: a control character in {_clip(line)!r}")
            continue
        key, colon, value = line.partition(":")
        key, value = key.strip(), value.strip(" \t")
        if not colon or not _EXTENSION_NAME.fullmatch(key):
            errors.append(f"line {number}: not 'key: value': {_clip(line)!r}")
            continue
        if key == "mx":
            if _MX_PATTERN.fullmatch(value) and len(value) <= 253:
                mx.append(value.lower().rstrip("."))
            else:
                errors.append(f"line {number}: mx {_clip(value)!r} is not a host name or *.domain pattern")
        else:
            fields.setdefault(key, value)
    version, mode, max_age_text = fields.get("version", ""), fields.get("mode", ""), fields.get("max_age", "")
    if version != "STSv1":
        errors.append(f"version is {_clip(version)!r}, not 'STSv1'" if version else "no version field")
    if mode not in ("enforce", "testing", "none"):
        errors.append(f"mode {_clip(mode)!r} is not enforce, testing or none" if mode else "no mode field")
    max_age = int(max_age_text) if max_age_text.isdigit() and len(max_age_text) <= 10 else None
    if max_age is None or max_age > MAX_AGE_LIMIT:
        errors.append(f"max_age {_clip(max_age_text)!r} is not a number of seconds up to {MAX_AGE_LIMIT}" if max_age_text else "no max_age field")
    if not mx and mode in ("enforce", "testing"):
        errors.append("no mx field (required unless mode is none)")
    return Policy(version, mode, max_age, tuple(mx), tuple(errors))


def txt_id(records: Sequence[str]) -> str | None:
    """The id of the one `v=STSv1` TXT record (RFC 8461 §3.1), else None."""
    ids = []
    for record in records:
        tags = [t.strip() for t in record.split(";")]
        if not tags or tags[0].replace(" ", "") != "v=STSv1":
            continue
        found = [t.split("=", 1)[1].strip() for t in tags[1:] if t.split("=", 1)[0].strip() == "id" and "=" in t]
        ids.append(found[0] if found else "")
    return ids[0] if len(ids) == 1 and ids[0] else None


# ---------------------------------------------------------------------------- judging


@dataclass(frozen=True)
class Expected:
    """What the site and DNS say about one domain's policy."""

    domain: str
    mode: MtaStsMode
    mx_names: tuple[str, ...]
    policy_id: str  # from the _mta-sts TXT record, else the site's own
    id_source: str  # where policy_id comes from, for the finding


def expected_policy(site: Site, domain: str, resolver: Resolver | None) -> Expected:
    sts = site.mta_sts_policy(domain)
    own = mta_sts_id(mta_sts_policy(site, sts))
    source = "the site's policy (no single v=STSv1 TXT record was read)"
    policy_id = own
    if resolver is not None:
        answer = resolver.resolve(f"_mta-sts.{domain}", "TXT")
        found = txt_id(answer.records) if answer.ok else None
        if found is not None:
            policy_id, source = found, f"the _mta-sts.{domain} TXT record"
    return Expected(domain, sts.mode, tuple(h.fqdn for _, h in site.mx_hosts), policy_id, source)


def judge_policy(want: Expected, fetched: Fetched) -> list[Finding]:
    """The fetched policy against `want`: one finding per aspect, in this order."""
    url = policy_url(want.domain)

    def say(id_: str, severity: Severity, expected: str, seen: str, advice: str = "") -> Finding:
        return Finding(id_, want.domain, CATEGORY, severity, url, expected, seen, "" if severity is Severity.PASS else advice)

    serve = f"serve build/dns/mta-sts/{want.policy_id}.txt at {url} (text/plain), with a certificate for mta-sts.{want.domain}"
    if fetched.error:
        return [say("mta-sts.policy-unavailable", Severity.ERROR, "the policy over HTTPS (RFC 8461 §3.3)", fetched.error, serve)]
    kind = fetched.content_type.split(";", 1)[0].strip().lower()
    out = [
        say(
            "mta-sts.policy-fetched",
            Severity.PASS,
            "the policy over HTTPS",
            f"HTTP 200, {len(fetched.body)} bytes, {_clip(fetched.content_type) or 'no Content-Type'}",
        )
    ]
    if kind != "text/plain":  # RFC 8461 §3.2: the policy is served as text/plain
        out.append(
            say(
                "mta-sts.policy-content-type",
                Severity.WARNING,
                "Content-Type: text/plain",
                f"Content-Type: {_clip(fetched.content_type)}" if fetched.content_type else "no Content-Type",
                "serve the policy file as text/plain",
            )
        )
    policy = parse_policy(fetched.body)
    if policy.errors:
        out.append(say("mta-sts.policy-invalid", Severity.ERROR, "a policy per RFC 8461 §3.2", "; ".join(policy.errors[:5]), serve))
    else:
        out.append(
            say("mta-sts.policy-syntax", Severity.PASS, "a policy per RFC 8461 §3.2", f"version {policy.version}, mode {policy.mode}, max_age {policy.max_age}")
        )
    served_id = mta_sts_id(fetched.body.decode("utf-8", "replace"))
    if served_id == want.policy_id:
        out.append(say("mta-sts.policy-id", Severity.PASS, f"id={want.policy_id} ({want.id_source})", f"the policy served has id={served_id}"))
    else:
        out.append(
            say(
                "mta-sts.policy-id-mismatch",
                Severity.ERROR,
                f"id={want.policy_id} ({want.id_source})",
                f"the policy served has id={served_id}: senders cache a policy the TXT record does not announce",
                serve + "; or publish the TXT record `provision dns` prints for the policy served",
            )
        )
    if policy.mode == want.mode.value:
        out.append(say("mta-sts.policy-mode", Severity.PASS, f"mode: {want.mode.value}", f"mode: {policy.mode}"))
    else:
        out.append(
            say("mta-sts.policy-mode-mismatch", Severity.ERROR, f"mode: {want.mode.value} (the site's)", f"mode: {_clip(policy.mode) or '(none)'}", serve)
        )
    # RFC 8461 §4.1: a sender delivers only to MX hosts a pattern matches; the others are refused.
    missing = [n for n in want.mx_names if not any(name_matches(p, n) for p in policy.mx)]
    patterns = ", ".join(_clip(p) for p in policy.mx[:20]) or "(none)"
    if missing:
        out.append(
            say(
                "mta-sts.policy-mx-missing",
                Severity.ERROR,
                f"mx patterns covering {', '.join(want.mx_names)}",
                f"not covered: {', '.join(missing)} (patterns: {patterns})",
                serve,
            )
        )
    elif want.mx_names:
        out.append(say("mta-sts.policy-mx", Severity.PASS, f"mx patterns covering {', '.join(want.mx_names)}", f"patterns: {patterns}"))
    return out


def sts_domains(site: Site) -> list[str]:
    """The domains that publish a policy: they receive mail and their mode is not none."""
    return [d for d, dom in sorted(site.domains.items()) if dom.receives_mail and site.mta_sts_policy(d).mode is not MtaStsMode.NONE]


def check_policy(site: Site, domain: str, address: str, port: int, ctx: ssl.SSLContext, timeout: float, resolver: Resolver | None) -> list[Finding]:
    """Fetch and judge the policy of `domain` from the web host at `address`:`port`."""
    return judge_policy(expected_policy(site, domain, resolver), fetch_policy(address, port, domain, ctx, timeout))


def check_policy_elsewhere(site: Site, domain: str, port: int, ctx: ssl.SSLContext, timeout: float, resolver: Resolver) -> list[Finding]:
    """The policy of `domain` where the site does not serve it (no ACME web side: the sheet asks
    the user to publish it): fetched from the first address DNS gives mta-sts.<domain>, as a
    sender would; none is an error, since senders then file sts-policy-fetch-error reports."""
    name = f"mta-sts.{domain}"
    addresses = [a for rdtype in ("A", "AAAA") for a in resolver.resolve(name, rdtype).records]
    if not addresses:
        fetched = Fetched(error=f"{name} has no address in DNS: serve the policy there (the record sheet says how) or set mta_sts.mode: none")
    else:
        fetched = fetch_policy(addresses[0], port, domain, ctx, timeout)
    return judge_policy(expected_policy(site, domain, resolver), fetched)

