"""Grammars only: SPF terms, DKIM and DMARC tag lists, MX values, DNSBL return codes.

No DNS here. Every parser returns a typed record or an `Invalid` carrying the reason; none raises.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from dataclasses import dataclass
from enum import StrEnum

# ---------------------------------------------------------------------------- common


@dataclass(frozen=True)
class Invalid:
    text: str
    reason: str


def parse_tags(text: str) -> dict[str, str] | Invalid:
    """`tag=value; tag=value` (RFC 6376 §3.2, RFC 7489 §6.4): a tag twice makes the list invalid."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        name, eq, value = part.partition("=")
        name = name.strip()
        if not eq or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
            return Invalid(text, f"{part!r} is not tag=value")
        if name in tags:
            return Invalid(text, f"tag {name!r} appears twice")
        tags[name] = value.strip()
    return tags


# ---------------------------------------------------------------------------- SPF (RFC 7208)

LOOKUP_MECHANISMS = frozenset({"include", "a", "mx", "ptr", "exists"})  # + redirect: RFC 7208 §4.6.4
_MECHANISMS = frozenset({"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"})
_MODIFIER = re.compile(r"([A-Za-z][A-Za-z0-9_.-]*)=(.*)", re.DOTALL)  # fullmatch: a trailing LF is no end
_DOMAIN_SPEC = re.compile(r"[A-Za-z0-9_.%{}+\-=/,|]+")  # used with fullmatch


class SpfQualifier(StrEnum):
    PASS = "+"
    FAIL = "-"
    SOFTFAIL = "~"
    NEUTRAL = "?"


@dataclass(frozen=True)
class SpfTerm:
    text: str
    name: str  # mechanism or modifier name, lower case
    value: str  # domain-spec / address / modifier value; "" when absent
    qualifier: SpfQualifier = SpfQualifier.PASS
    modifier: bool = False

    @property
    def has_macro(self) -> bool:
        return "%" in self.value


@dataclass(frozen=True)
class SpfRecord:
    text: str
    terms: tuple[SpfTerm, ...]

    @property
    def mechanisms(self) -> tuple[SpfTerm, ...]:
        return tuple(t for t in self.terms if not t.modifier)

    @property
    def all(self) -> SpfTerm | None:
        return next((t for t in self.mechanisms if t.name == "all"), None)

    @property
    def redirect(self) -> str | None:
        """RFC 7208 §6.1: ignored when the record has an `all` mechanism."""
        if self.all is not None:
            return None
        return next((t.value for t in self.terms if t.modifier and t.name == "redirect"), None)


def is_spf(text: str) -> bool:
    """RFC 7208 §4.5: exactly `v=spf1`, then a space or the end (`v=spf10` is not SPF)."""
    lower = text.lower()
    return lower == "v=spf1" or lower.startswith("v=spf1 ")


def _cidr(text: str, maximum: int) -> bool:
    return text.isdigit() and 0 <= int(text) <= maximum and not (len(text) > 1 and text.startswith("0"))


def _parse_spf_term(token: str) -> SpfTerm | str:
    modifier = _MODIFIER.fullmatch(token)
    if modifier and ":" not in modifier.group(1):
        name, value = modifier.group(1).lower(), modifier.group(2)
        if name in ("redirect", "exp") and not (value and _DOMAIN_SPEC.fullmatch(value)):
            return f"{token!r}: {name}= needs a domain"
        return SpfTerm(token, name, value, modifier=True)
    qualifier = SpfQualifier.PASS
    body = token
    if body[0] in "+-~?":
        qualifier, body = SpfQualifier(body[0]), body[1:]
    name, colon, value = body.partition(":")
    cidr = ""
    if not colon and "/" in name:
        name, _, cidr = name.partition("/")
    name = name.lower()
    if name not in _MECHANISMS:
        return f"{token!r} is not an SPF mechanism (all, include, a, mx, ptr, ip4, ip6, exists)"
    if name == "all":
        if colon or cidr:
            return f"{token!r}: all takes no argument"
        return SpfTerm(token, name, "", qualifier)
    if name in ("ip4", "ip6"):
        address, _, prefix = value.partition("/")
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return f"{token!r}: {address!r} is not an IP address"
        if (name == "ip4") != (ip.version == 4):
            return f"{token!r}: wrong address family for {name}"
        if prefix and not _cidr(prefix, 32 if name == "ip4" else 128):
            return f"{token!r}: bad prefix length"
        return SpfTerm(token, name, value, qualifier)
    if name in ("include", "exists") and not value:
        return f"{token!r}: {name} needs a domain"
    if value:
        domain, _, cidrs = value.partition("/")
        if not _DOMAIN_SPEC.fullmatch(domain) or ".." in domain:
            return f"{token!r}: {domain!r} is not a domain"
        value = domain
        cidr = cidrs
    if cidr:
        v4, _, v6 = cidr.partition("//")
        if name not in ("a", "mx") or (v4 and not _cidr(v4, 32)) or (v6 and not _cidr(v6, 128)):
            return f"{token!r}: bad prefix length"
    return SpfTerm(token, name, value, qualifier)


def parse_spf(text: str) -> SpfRecord | Invalid:
    """RFC 7208 §4.6.1/§12: terms separated by spaces, qualifier + mechanism or name=value."""
    if not is_spf(text):
        return Invalid(text, "does not start with v=spf1")
    terms: list[SpfTerm] = []
    # RFC 7208 §4.6.1: terms are separated by SP only; a TAB or newline inside is a syntax error.
    for token in [t for t in text.split(" ") if t][1:]:
        term = _parse_spf_term(token)
        if isinstance(term, str):
            return Invalid(text, term)
        terms.append(term)
    for once in ("redirect", "exp"):
        if sum(1 for t in terms if t.modifier and t.name == once) > 1:
            return Invalid(text, f"{once}= appears more than once (RFC 7208 §6)")
    return SpfRecord(text, tuple(terms))


# ---------------------------------------------------------------------------- DKIM (RFC 6376)


@dataclass(frozen=True)
class DkimRecord:
    text: str
    key_type: str  # k=, default rsa
    public_key: str  # p= with whitespace removed; "" = revoked
    testing: bool  # t=y
    services: tuple[str, ...] = ("*",)  # s=, a colon list; default "*" (RFC 6376 §3.6.1)
    hashes: tuple[str, ...] | None = None  # h=, a colon list; None = not given, all allowed

    @property
    def revoked(self) -> bool:
        return self.public_key == ""

    @property
    def for_email(self) -> bool:
        """RFC 6376 §3.6.1: verifiers MUST ignore a key whose s= names neither `*` nor `email`
        (values are case-sensitive, §3.2)."""
        return "*" in self.services or "email" in self.services

    @property
    def allows_sha256(self) -> bool:
        """RFC 8301 §3.1: verifiers MUST NOT accept sha1, so h= must allow sha256 (the only hash
        left for rsa-sha256 and ed25519-sha256, RFC 8463)."""
        return self.hashes is None or "sha256" in self.hashes

    def key_bytes(self) -> bytes | None:
        try:
            return base64.b64decode(self.public_key, validate=True)
        except (binascii.Error, ValueError):
            return None


def parse_dkim(text: str) -> DkimRecord | Invalid:
    """RFC 6376 §3.6.1: v= (if present) first and DKIM1; p= required; k= rsa or ed25519."""
    tags = parse_tags(text)
    if isinstance(tags, Invalid):
        return tags
    if "v" in tags and (tags["v"] != "DKIM1" or next(iter(tags)) != "v"):
        return Invalid(text, "v= must be first and exactly DKIM1")
    if "p" not in tags:
        return Invalid(text, "no p= tag (the public key)")
    key_type = tags.get("k", "rsa").lower()
    if key_type not in ("rsa", "ed25519"):
        return Invalid(text, f"k={key_type} is not rsa or ed25519")
    public_key = re.sub(r"\s+", "", tags["p"])
    record = DkimRecord(
        text,
        key_type,
        public_key,
        "y" in _colon_list(tags.get("t", "")),
        _colon_list(tags["s"]) if "s" in tags else ("*",),
        _colon_list(tags["h"]) if "h" in tags else None,
    )
    if public_key and record.key_bytes() is None:
        return Invalid(text, "p= is not base64")
    return record


def _colon_list(value: str) -> tuple[str, ...]:
    """RFC 6376 §3.6.1: t=, s= and h= are colon lists; folding whitespace may surround each item."""
    return tuple(item for item in re.sub(r"\s+", "", value).split(":") if item)


def dkim_key_bits(record: DkimRecord) -> int | None:
    """RSA modulus size of p= (SubjectPublicKeyInfo, or a bare RSAPublicKey); 256 for ed25519."""
    raw = record.key_bytes()
    if not raw:
        return None
    if record.key_type == "ed25519":
        return 256 if len(raw) == 32 else None  # RFC 8463 §4.2: the bare 32-octet key
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    for load in (serialization.load_der_public_key, _load_pkcs1):
        try:
            key = load(raw)
        except (ValueError, TypeError):
            continue
        if isinstance(key, rsa.RSAPublicKey):
            return key.key_size
    return None


def _load_pkcs1(raw: bytes) -> object:
    from cryptography.hazmat.primitives import serialization

    pem = b"-----BEGIN RSA PUBLIC KEY-----\n" + base64.encodebytes(raw) + b"-----END RSA PUBLIC KEY-----\n"
    return serialization.load_pem_public_key(pem)


# ---------------------------------------------------------------------------- DMARC (RFC 7489 / 9989)

_POLICIES = ("none", "quarantine", "reject")
REMOVED_DMARC_TAGS = ("pct", "rf", "ri")  # removed by RFC 9989


@dataclass(frozen=True)
class DmarcRecord:
    text: str
    policy: str  # none / quarantine / reject ("none" when p is absent: RFC 9989 §4.7)
    policy_given: bool
    subdomain_policy: str | None
    rua: tuple[str, ...]
    ruf: tuple[str, ...]
    removed_tags: tuple[str, ...]
    testing: bool  # t=y
    adkim: str = "r"  # RFC 7489 §6.3: DKIM alignment, r (relaxed, the default) or s (strict)
    aspf: str = "r"  # RFC 7489 §6.3: SPF alignment
    np: str | None = None  # RFC 9989 §4.7: policy for non-existent subdomains


def is_dmarc(text: str) -> bool:
    return re.match(r"v\s*=\s*DMARC1\s*(;|\Z)", text) is not None


def mailto_domain(uri: str) -> str | None:
    """The domain of a `mailto:` report URI (without any `!size` suffix), or None."""
    if not uri.lower().startswith("mailto:"):
        return None
    address = uri[7:].split("!", 1)[0]
    local, at, domain = address.rpartition("@")
    return domain.lower().rstrip(".") if at and local and domain else None


def parse_dmarc(text: str) -> DmarcRecord | Invalid:
    """RFC 7489 §6.3-6.4: v=DMARC1 first; p, sp, np, adkim, aspf from closed sets."""
    tags = parse_tags(text)
    if isinstance(tags, Invalid):
        return tags
    if next(iter(tags), None) != "v" or tags["v"] != "DMARC1":
        return Invalid(text, "v=DMARC1 must be the first tag")
    for tag in ("p", "sp", "np"):
        if tag in tags and tags[tag].lower() not in _POLICIES:
            return Invalid(text, f"{tag}={tags[tag]} is not none, quarantine or reject")
    for tag in ("adkim", "aspf"):
        if tag in tags and tags[tag].lower() not in ("r", "s"):
            return Invalid(text, f"{tag}={tags[tag]} is not r or s")
    if "pct" in tags and not (tags["pct"].isdigit() and int(tags["pct"]) <= 100):
        return Invalid(text, f"pct={tags['pct']} is not 0-100")
    uris: dict[str, tuple[str, ...]] = {}
    for tag in ("rua", "ruf"):
        uris[tag] = tuple(u.strip() for u in tags.get(tag, "").split(",") if u.strip())
        for uri in uris[tag]:
            if ":" not in uri:
                return Invalid(text, f"{tag}: {uri!r} is not a URI")
    return DmarcRecord(
        text,
        tags.get("p", "none").lower(),
        "p" in tags,
        tags["sp"].lower() if "sp" in tags else None,
        uris["rua"],
        uris["ruf"],
        tuple(t for t in REMOVED_DMARC_TAGS if t in tags),
        tags.get("t", "n").lower() == "y",
        tags.get("adkim", "r").lower(),
        tags.get("aspf", "r").lower(),
        tags["np"].lower() if "np" in tags else None,
    )


# ---------------------------------------------------------------------------- MX


@dataclass(frozen=True, order=True)
class MxValue:
    priority: int
    host: str  # absolute, lower case; "." is the null MX

    def __str__(self) -> str:
        return f"{self.priority} {self.host}"


def parse_mx(text: str) -> MxValue | Invalid:
    priority, _, host = text.strip().partition(" ")
    if not priority.isdigit() or not host:
        return Invalid(text, "not 'PRIORITY HOST'")
    host = host.strip().lower()
    return MxValue(int(priority), host if host.endswith(".") else host + ".")


# ---------------------------------------------------------------------------- DNSBL (RFC 5782)

# docs.spamhaus.com "Available Zones" (BL-03).
ZEN_CODES = {
    "127.0.0.2": "SBL (Spamhaus Block List: spam source or operation)",
    "127.0.0.3": "SBL CSS (snowshoe spam source)",
    "127.0.0.4": "XBL (exploited host: malware, proxy, botnet)",
    "127.0.0.5": "XBL (exploited host)",
    "127.0.0.6": "XBL (exploited host)",
    "127.0.0.7": "XBL (exploited host)",
    "127.0.0.9": "DROP (hijacked netblock: Do not Route Or Peer)",
    "127.0.0.10": "PBL, ISP maintained (this address should not send mail directly to MX)",
    "127.0.0.11": "PBL, Spamhaus maintained (this address should not send mail directly to MX)",
    "127.0.0.30": "BCL (botnet controller)",
}
# BL-04: query errors, never listings.
SPAMHAUS_ERRORS = {
    "127.255.255.252": "typing error in the DNSBL name (unknown zone)",
    "127.255.255.254": "query came through a public or open resolver",
    "127.255.255.255": "excessive number of queries",
}
_LISTED = ipaddress.ip_network("127.0.0.0/24")
_ERRORS = ipaddress.ip_network("127.255.255.0/24")


class DnsblCode(StrEnum):
    LISTED = "listed"  # an answer in 127.0.0.0/24
    ERROR = "error"  # 127.255.255.0/24: could not determine
    UNEXPECTED = "unexpected"  # anything else: the zone is not behaving as a DNSBL


def classify_dnsbl_answer(value: str) -> DnsblCode:
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return DnsblCode.UNEXPECTED
    if ip in _ERRORS:
        return DnsblCode.ERROR
    if ip in _LISTED:
        return DnsblCode.LISTED
    return DnsblCode.UNEXPECTED


def dnsbl_meaning(zone: str, code: str) -> str:
    """Words for a return code: Spamhaus ZEN's table for Spamhaus zones, else the code itself."""
    if code in SPAMHAUS_ERRORS:
        return f"could not determine (public resolver or query limit): {code} means {SPAMHAUS_ERRORS[code]}"
    if "spamhaus" in zone and code in ZEN_CODES:
        return f"{code} = {ZEN_CODES[code]}"
    return f"listed with return code {code}"
