"""Value types of the site file: each parses, normalises and refuses what could break a config line.

Every validator raises `PydanticCustomError("provision", message, {"hint": ...})`, so the
error that reaches the user is our sentence, not pydantic's, and carries a hint.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import idna
from pydantic import PlainSerializer, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError


def fail(message: str, hint: str = "") -> PydanticCustomError:
    return PydanticCustomError("provision", message, {"hint": hint})


# ---------------------------------------------------------------------------- text

# Every value ends up in a config line, a table, a command line or a terminal. One rule for all
# of them: no character of Unicode category C* (controls, format/bidi, unassigned) or Z* (line
# and paragraph separators, non-ASCII spaces). str.isprintable() is exactly that set, with the
# plain space U+0020 let through; each field's own pattern decides whether a space is legal.


def visible(value: str, what: str = "value") -> str:
    """`value` unchanged, or an error naming the first invisible character and where it is."""
    if value.isprintable():
        return value
    index, char = next((i, c) for i, c in enumerate(value) if not c.isprintable())
    label = unicodedata.name(char, "") or {"\n": "LINE FEED", "\r": "CARRIAGE RETURN", "\t": "TAB"}.get(char, "control character")
    shown = repr(value) if len(value) <= 80 else repr(value[:60]) + "..."
    raise fail(
        f"{what} {shown} contains U+{ord(char):04X} ({label}) at character {index + 1}",
        "no line breaks, tabs, control, bidi or invisible characters; retype the value",
    )


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise fail(f"expected text, got {type(value).__name__}", "quote it")
    return visible(value)


# A free-text string: no C*/Z* characters except a plain space. Every plain `str` field uses it.
Text = Annotated[str, PlainValidator(_text), WithJsonSchema({"type": "string"})]


def json_pattern(pattern: re.Pattern[str]) -> str:
    """A Python pattern anchored with \\Z, as JSON Schema writes it: ECMA-262 has no \\Z, and its
    `$` (without the m flag) is the end of the input, which Python's `$` is not."""
    return pattern.pattern.removesuffix("\\Z") + "$"


def _strict_int(value: Any) -> int:
    # YAML `true` is a bool, and bool is an int in Python: refuse it (and "10", 10.0) for numbers.
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(f"expected a whole number, got {value!r}", "write digits without quotes, e.g. 10")
    return value


def _version(value: Any) -> int:
    if _strict_int(value) != 1:
        raise fail(f"version {value!r} is not supported", "version: 1")
    return 1


Version = Annotated[int, PlainValidator(_version), WithJsonSchema({"const": 1, "type": "integer"})]


# ---------------------------------------------------------------------------- domain names

# Two kinds of name, chosen per field (docs/site-file.md, "Names"):
# - DomainName, a host name or the domain of a mail address: LDH labels only. RFC 1123 §2.1
#   (host names), RFC 5321 §4.1.2 (Domain = sub-domain = Let-dig [Ldh-str]; RFC 6531 §3.3 adds
#   U-labels), RFC 2181 §10.3 (an MX target is a host name), RFC 6125 §6.4.1 (a certificate's
#   DNS-ID is a host name). Hosts, hosted domains, transport keys and next hops, the smarthost,
#   alias targets, DMARC/TLS-RPT report addresses.
# - DnsName, a name that is only looked up in the DNS: RFC 2181 §11 puts no syntax on labels,
#   and service names start with '_' (_spf.google.com; RFC 8552). SPF include targets (RFC 7208
#   §7.1 domain-spec) and DNSBL zones (RFC 5782 §2). Letters, digits, '-' and '_': anything
#   else would need escaping in a zone file and no provider publishes it.
_LDH_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_DNS_LABEL = re.compile(r"[a-z0-9_-]{1,63}")
_LDH_HINT = "labels of letters, digits and hyphens joined by dots, e.g. mail.example.com (RFC 1123 host name)"
_DNS_HINT = "labels of letters, digits, '-' and '_' joined by dots, e.g. _spf.provider.example (RFC 2181 §11)"


def _name_text(value: Any, what: str) -> str:
    """The name as typed, without one trailing dot (the root); no spaces, no invisible characters."""
    if not isinstance(value, str):
        raise fail(f"expected a {what}, got {type(value).__name__}", "write it as text, e.g. example.com")
    if not value.strip() or any(c.isspace() for c in value):
        raise fail(f"{value!r} is not a valid {what}", "no spaces or line breaks")
    visible(value, what)
    return value.removesuffix(".")


def _shape_problem(labels: list[str], ascii_name: str, label: re.Pattern[str], hint: str) -> str | None:
    """Why `labels` do not make a name (RFC 1035 §2.3.4 sizes, no empty label), or None."""
    if len(labels) < 2:
        return "a name of at least two labels, e.g. example.com"
    if "" in labels:
        return "an empty label ('..', or a leading or trailing dot): remove it"
    if len(ascii_name) > 253:
        return f"at most 253 characters in all (this one has {len(ascii_name)}; RFC 1035 §2.3.4)"
    if any(len(part) > 63 for part in labels):
        return "at most 63 characters per label (RFC 1035 §2.3.4)"
    if not all(label.fullmatch(part) for part in labels):
        return hint
    if labels[-1].isdigit() or not _LDH_LABEL.fullmatch(labels[-1]):
        # RFC 7208 §7.1 toplabel, RFC 3696 §2: a top-level domain is LDH and not all-numeric.
        return "the last label is a top-level domain: letters, digits and hyphens, not all digits (an IP address is not a name)"
    return None


def _check_a_labels(value: str, labels: list[str], what: str) -> None:
    """An 'xn--' label must decode (IDNA 2008, RFC 5891 §5.4): render writes its U-label form too."""
    for part in labels:
        if part.startswith("xn--"):
            try:
                idna.decode(part)
            except (idna.IDNAError, UnicodeError) as exc:
                raise fail(
                    f"{value!r} is not a valid {what}: {part!r} is not a valid A-label ({exc})", "copy the name as registered, or write it in its own script"
                ) from None


def to_a_label(value: Any, what: str = "domain name") -> str:
    """Fold case, encode IDN to A-labels (IDNA 2008 with UTS 46 mapping), check LDH syntax."""
    name = _name_text(value, what)
    if "_" in name:
        raise fail(
            f"{value!r} is not a valid {what}: '_' is not allowed in a host name or mail domain (RFC 1123 §2.1, RFC 5321 §4.1.2)",
            "only names that are merely looked up may hold '_', such as policy.spf.include (e.g. _spf.provider.example)",
        )
    try:
        ascii_name = name.encode("ascii").decode().lower() if name.isascii() else idna.encode(name, uts46=True).decode()
    except (idna.IDNAError, UnicodeError) as exc:
        raise fail(f"{value!r} is not a valid {what}: {exc}", "use letters, digits and hyphens per label") from None
    return _checked_name(value, what, ascii_name.split("."), _LDH_LABEL, _LDH_HINT)


def _checked_name(value: Any, what: str, labels: list[str], label: re.Pattern[str], hint: str) -> str:
    """The ASCII name of `labels` once every label has the shape `label` allows and every A-label
    decodes; otherwise the error names the value as written."""
    ascii_name = ".".join(labels)
    problem = _shape_problem(labels, ascii_name, label, hint)
    if problem:
        raise fail(f"{value!r} is not a valid {what}", problem)
    _check_a_labels(value, labels, what)
    return ascii_name


def to_u_label(a_label: str) -> str:
    """The U-label form of a name `to_a_label` accepted (itself when it is all ASCII)."""
    return idna.decode(a_label) if "xn--" in a_label else a_label


def spellings(a_label: str) -> tuple[str, ...]:
    """How mail may name a domain: its A-label and, for an IDN, its U-label (RFC 6531 §3.2:
    an SMTPUTF8 client may write either; nothing on the way converts one to the other)."""
    u_label = to_u_label(a_label)
    return (a_label,) if u_label == a_label else (a_label, u_label)


def to_dns_name(value: Any, what: str = "domain name") -> str:
    """A DNS name (RFC 2181 §11): like `to_a_label`, but labels may hold '_' (service labels)."""
    name = _name_text(value, what)
    try:
        # UTS 46 mapping (case, width, the ideographic full stop) without the STD3 rules, which
        # would refuse '_'; each non-ASCII label then becomes an A-label on its own.
        mapped = idna.uts46_remap(name, std3_rules=False, transitional=False)
        labels = [part if part.isascii() else idna.alabel(part).decode() for part in mapped.split(".")]
    except (idna.IDNAError, UnicodeError) as exc:
        raise fail(f"{value!r} is not a valid {what}: {exc}", _DNS_HINT) from None
    return _checked_name(value, what, labels, _DNS_LABEL, _DNS_HINT)


def _domain(value: Any) -> str:
    return to_a_label(value)


def _spf_target(value: Any) -> str:
    # RFC 7208 §7: a domain-spec may hold macros (%{i}, %{d}, ...) expanded per message. The
    # record we publish must mean the same to every receiver and be checkable: none.
    if isinstance(value, str) and "%" in value:
        raise fail(
            f"SPF include {value!r} contains an SPF macro ('%')",
            "macros (%{i}, %{d}, ...) are not accepted here: write the provider's plain domain, e.g. _spf.provider.example",
        )
    return to_dns_name(value)


def _dns_name(value: Any) -> str:
    return to_dns_name(value)


DomainName = Annotated[
    str,
    PlainValidator(_domain),
    WithJsonSchema({"type": "string", "description": "host or mail domain name (letters, digits, hyphens); Unicode (IDN) is accepted and stored as A-label"}),
]

DnsName = Annotated[
    str,
    PlainValidator(_dns_name),
    WithJsonSchema({"type": "string", "description": "DNS name; labels may start with '_' (RFC 2181 §11); Unicode (IDN) is stored as A-label"}),
]

SpfInclude = Annotated[
    str,
    PlainValidator(_spf_target),
    WithJsonSchema({"type": "string", "description": "the domain of an SPF include, e.g. _spf.google.com; no macros", "examples": ["_spf.google.com"]}),
]


# ---------------------------------------------------------------------------- local parts, names

# No "+": it is the recipient delimiter (alice+tag@ reaches alice).
_LOCAL = re.compile(r"^[a-z0-9](?:[a-z0-9._-]*[a-z0-9_])?\Z")


def _local_part(value: Any) -> str:
    if not isinstance(value, str):
        raise fail(f"expected a local part (the part before @), got {type(value).__name__}", "e.g. alice")
    local = visible(value, "local part").lower()
    if not _LOCAL.fullmatch(local) or ".." in local or len(local) > 64:
        raise fail(
            f"{value!r} is not an accepted local part",
            "letters, digits and . _ - (not first or last, no '..'; + is the tag delimiter), at most 64 characters",
        )
    return local


LocalPart = Annotated[
    str,
    PlainValidator(_local_part),
    WithJsonSchema({"type": "string", "pattern": "^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?$", "maxLength": 64}),
]


def _address_or_local(value: Any) -> str:
    """`alice` (same domain) or `someone@example.com` (domain stored as A-label)."""
    if isinstance(value, str) and "@" in value:
        local, _, domain = value.rpartition("@")
        return f"{_local_part(local)}@{to_a_label(domain)}"
    return _local_part(value)


def _targets(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise fail("an empty list of targets", "name at least one mailbox or address")
    out = tuple(_address_or_local(item) for item in items)
    if len(set(out)) != len(out):
        raise fail("the same target is listed twice", "list each target once")
    return out


Targets = Annotated[
    tuple[str, ...],
    PlainValidator(_targets),
    WithJsonSchema(
        {
            "description": "local part of this domain, or a full address; one or a list",
            "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}],
        }
    ),
]

_SIMPLE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")


def _simple_name(value: Any) -> str:
    if not isinstance(value, str) or not _SIMPLE_NAME.fullmatch(visible(value, "name")):
        raise fail(f"{value!r} is not an accepted name", "lower-case letters, digits and '-', e.g. mx1")
    return value


SimpleName = Annotated[str, PlainValidator(_simple_name), WithJsonSchema({"type": "string", "pattern": json_pattern(_SIMPLE_NAME)})]

_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def _ansible_host(value: Any) -> str:
    """An IP address or a host name: ssh and Ansible read a leading '-' as an option, so none."""
    if isinstance(value, str):
        try:
            return str(ipaddress.ip_address(visible(value, "host")))
        except ValueError:
            labels = value.rstrip(".").split(".")
            if len(value) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels):
                return value
    raise fail(f"{value!r} is not an IP address or host name", "e.g. 192.0.2.10 or mx1.example.com (it must not start with '-')")


AnsibleHost = Annotated[
    str,
    PlainValidator(_ansible_host),
    WithJsonSchema({"type": "string", "pattern": "^[A-Za-z0-9.:][A-Za-z0-9.:-]*$", "description": "address or name Ansible connects to"}),
]


# ---------------------------------------------------------------------------- addresses, networks


def _address_text(value: Any) -> str:
    if not isinstance(value, str):
        raise fail(f"expected an address as text, got {type(value).__name__}", "e.g. 203.0.113.10 or 2001:db8::10")
    return visible(value, "address")


def _ipv4(value: Any) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(_address_text(value))
    except ValueError:
        raise fail(f"{value!r} is not an IPv4 address", "e.g. 203.0.113.10") from None


def _ipv6(value: Any) -> ipaddress.IPv6Address:
    try:
        return ipaddress.IPv6Address(_address_text(value))
    except ValueError:
        raise fail(f"{value!r} is not an IPv6 address", "e.g. 2001:db8::10") from None


IPv4 = Annotated[ipaddress.IPv4Address, PlainValidator(_ipv4), PlainSerializer(str), WithJsonSchema({"type": "string", "format": "ipv4"})]
IPv6 = Annotated[ipaddress.IPv6Address, PlainValidator(_ipv6), PlainSerializer(str), WithJsonSchema({"type": "string", "format": "ipv6"})]


def _ip(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(_address_text(value))
    except ValueError:
        raise fail(f"{value!r} is not an IP address", "e.g. 192.0.2.53 or 2001:db8::53") from None


IPAddress = Annotated[
    ipaddress.IPv4Address | ipaddress.IPv6Address,
    PlainValidator(_ip),
    PlainSerializer(str),
    WithJsonSchema({"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]}),
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _network(value: Any) -> Network:
    text = _address_text(value)
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        if "has host bits set" in str(exc):
            loose = ipaddress.ip_network(text, strict=False)
            raise fail(f"{text!r} has host bits set", f"did you mean {loose}?") from None
        raise fail(f"{text!r} is not a network", "CIDR notation, e.g. 192.168.10.0/24") from None
    # mynetworks may relay without authentication: anything this wide makes an open relay.
    too_wide = 8 if net.version == 4 else 16
    if net.prefixlen < too_wide:
        raise fail(
            f"{text} is far too wide for a trusted network: every address in it may relay mail without a password",
            "list only your own LAN or server networks, e.g. 192.168.10.0/24 (an open relay is abused within hours)",
        )
    return net


RelayNetwork = Annotated[Network, PlainValidator(_network), PlainSerializer(str), WithJsonSchema({"type": "string", "description": "CIDR network"})]


# ---------------------------------------------------------------------------- transports

_TRANSPORT = re.compile(r"^(smtp|lmtp|relay):(\[[a-z0-9.-]+\]|[a-z0-9.-]+)(:[0-9]{1,5})?\Z")


def _transport(value: Any) -> str:
    text = visible(value, "transport").strip().lower() if isinstance(value, str) else ""
    found = _TRANSPORT.fullmatch(text)
    if not found:
        raise fail(
            f"{value!r} is not an accepted transport",
            'write TRANSPORT:[NEXT-HOP]:PORT, e.g. "smtp:[mx.partner.example]:25" (brackets: no MX lookup)',
        )
    host = found.group(2).strip("[]")
    if not re.fullmatch(r"[0-9.]+", host):
        to_a_label(host, "next-hop host name")
    if found.group(3) and not 0 < int(found.group(3)[1:]) < 65536:
        raise fail(f"{value!r} has an invalid port", "1-65535")
    return text


Transport = Annotated[
    str,
    PlainValidator(_transport),
    WithJsonSchema({"type": "string", "pattern": json_pattern(_TRANSPORT), "examples": ["smtp:[mx.partner.example]:25"]}),
]


# ---------------------------------------------------------------------------- sizes

_SIZE = re.compile(r"^([1-9][0-9]*)([KMGT]?)\Z")


def _size(value: Any) -> str:
    text = visible(str(value), "size").strip().upper() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if not _SIZE.fullmatch(text):
        raise fail(f"{value!r} is not a size", "a number with an optional K, M, G or T suffix, e.g. 2G")
    return text


Size = Annotated[str, PlainValidator(_size), WithJsonSchema({"type": ["string", "integer"], "examples": ["2G", "500M"]})]


# ---------------------------------------------------------------------------- secrets

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")


SECRET_REF_SCHEMA = {
    "description": "a secret resolved at render time: {env: NAME} or {file: relative/path}",
    "type": "object",
    "properties": {"env": {"type": "string"}, "file": {"type": "string"}},
    "minProperties": 1,
    "maxProperties": 1,
    "additionalProperties": False,
}


@dataclass(frozen=True)
class SecretRef:
    """A secret resolved at render time: from an environment variable or a file beside the site."""

    env: str | None = None
    file: str | None = None

    def describe(self) -> str:
        return f"environment variable {self.env}" if self.env else f"file {self.file}"


def _secret_ref(value: dict[str, Any]) -> SecretRef:
    keys = set(value)
    if keys == {"env"}:
        name = value["env"]
        if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
            raise fail(f"{name!r} is not an environment variable name", "e.g. SMARTHOST_PASSWORD")
        return SecretRef(env=name)
    if keys == {"file"}:
        rel = value["file"]
        if not isinstance(rel, str) or not rel or rel.startswith("/") or ".." in rel.split("/"):
            raise fail(f"{rel!r} is not an accepted secret file", "a path relative to the site file, without '..'")
        visible(rel, "secret file")
        return SecretRef(file=rel)
    raise fail("a secret reference has exactly one key, env or file", "{env: NAME} or {file: relative/path}")


def _secret(value: Any) -> SecretRef:
    if isinstance(value, dict):
        return _secret_ref(value)
    raise fail(
        "secrets are never written in the site file",
        "use {env: NAME} or {file: relative/path}, resolved when rendering",
    )


SecretValue = Annotated[
    SecretRef,
    PlainValidator(_secret),
    PlainSerializer(lambda s: {"env": s.env} if s.env else {"file": s.file}),
    WithJsonSchema(SECRET_REF_SCHEMA),
]

# Dovecot password schemes we accept, strongest first (Dovecot password schemes docs).
STRONG_SCHEMES = ("ARGON2ID", "BLF-CRYPT", "SHA512-CRYPT")
_HASH_FORMS = {
    "ARGON2ID": re.compile(r"^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+\Z"),
    "BLF-CRYPT": re.compile(r"^\$2[abxy]\$\d\d\$[./A-Za-z0-9]{53}\Z"),
    "SHA512-CRYPT": re.compile(r"^\$6\$(rounds=\d+\$)?[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{86}\Z"),
}
_SCHEME = re.compile(r"^\{([A-Z0-9.-]+)\}(.*)\Z", re.S)


def check_password_hash(text: str) -> str:
    """A Dovecot scheme-prefixed hash of an accepted scheme, or an error that says what to do."""
    found = _SCHEME.fullmatch(visible(text, "password hash"))
    if not found:
        raise fail(
            "plaintext is not accepted; a password must be a Dovecot scheme-prefixed hash",
            "run `provision passwd` and paste the {ARGON2ID} hash it prints",
        )
    scheme, body = found.groups()
    if scheme not in _HASH_FORMS:
        raise fail(
            f"the password scheme {{{scheme}}} is not accepted (weak or plaintext)",
            "use {ARGON2ID}, {BLF-CRYPT} or {SHA512-CRYPT}; `provision passwd` prints an {ARGON2ID} hash",
        )
    if not _HASH_FORMS[scheme].fullmatch(body):
        raise fail(f"this is not a well-formed {{{scheme}}} hash", "copy the whole hash, e.g. from `provision passwd`")
    return text


def _password(value: Any) -> str | SecretRef:
    if isinstance(value, dict):
        return _secret_ref(value)
    if not isinstance(value, str):
        raise fail("expected a password hash or {env:}/{file:} reference", "run `provision passwd` to make a hash")
    return check_password_hash(value)


Password = Annotated[
    str | SecretRef,
    PlainValidator(_password),
    PlainSerializer(lambda s: s if isinstance(s, str) else ({"env": s.env} if s.env else {"file": s.file})),
    WithJsonSchema(
        {
            "description": "Dovecot scheme-prefixed hash ({ARGON2ID}, {BLF-CRYPT}, {SHA512-CRYPT}) or a secret reference",
            "oneOf": [{"type": "string", "pattern": "^\\{(ARGON2ID|BLF-CRYPT|SHA512-CRYPT)\\}"}, SECRET_REF_SCHEMA],
        }
    ),
]


# ---------------------------------------------------------------------------- dns.targets (octoDNS providers)

# An octoDNS provider's keyword argument, as its documentation spells it (key_name, host, token).
_PROVIDER_OPTION = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
_PROVIDER_SCALAR_MAX = 1024


def _provider_option(value: Any) -> str:
    if not isinstance(value, str) or not _PROVIDER_OPTION.fullmatch(value):
        raise fail(f"{value!r} is not a provider option name", "letters, digits and '_' as the provider's documentation spells it, e.g. key_name")
    return value


def _provider_scalar(value: Any) -> str | int | float | bool:
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        if len(value) > _PROVIDER_SCALAR_MAX:
            raise fail(f"a provider option of {len(value)} characters is too long", f"at most {_PROVIDER_SCALAR_MAX}")
        return visible(value, "provider option")
    raise fail(f"expected text, a number, true/false, a list of those or a secret reference, got {type(value).__name__}", "")


def _provider_value(value: Any) -> Any:
    """A provider option: a scalar, a list of scalars, or {env:}/{file:} (a secret, resolved at push)."""
    if isinstance(value, dict):
        return _secret_ref(value)
    if isinstance(value, list):
        return tuple(_provider_scalar(item) for item in value)
    return _provider_scalar(value)


_SCALAR_SCHEMA = {"type": ["string", "number", "boolean"]}
ProviderOption = Annotated[str, PlainValidator(_provider_option), WithJsonSchema({"type": "string", "pattern": json_pattern(_PROVIDER_OPTION)})]
ProviderValue = Annotated[
    Any,
    PlainValidator(_provider_value),
    PlainSerializer(lambda v: ({"env": v.env} if v.env else {"file": v.file}) if isinstance(v, SecretRef) else v),
    WithJsonSchema({"oneOf": [_SCALAR_SCHEMA, {"type": "array", "items": _SCALAR_SCHEMA}, SECRET_REF_SCHEMA]}),
]


# ---------------------------------------------------------------------------- closed sets


class Service(StrEnum):
    MX = "mx"
    BACKUP_MX = "backup-mx"
    SUBMISSION = "submission"
    IMAP = "imap"
    POP3 = "pop3"
    RELAY = "relay"
    WEB = "web"  # the web side of mail: MTA-STS policy, autoconfig, the ACME challenge (docs/certificates.md)


class OsRelease(StrEnum):
    """What a host runs; render follows it (Dovecot 2.4 / Postfix 3.10 on 13, 2.3 / 3.7 on 12)."""

    DEBIAN_13 = "debian-13"
    DEBIAN_12 = "debian-12"


# The release a host without `os:` runs: Debian's current stable.
DEFAULT_OS = OsRelease.DEBIAN_13


class SpfAll(StrEnum):
    FAIL = "fail"
    SOFTFAIL = "softfail"


class DkimKeyType(StrEnum):
    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"
    RSA_4096 = "rsa-4096"
    ED25519 = "ed25519"


class DmarcPolicy(StrEnum):
    NONE = "none"
    QUARANTINE = "quarantine"
    REJECT = "reject"


class InboundDmarc(StrEnum):
    """What the mx hosts do with mail From one of the site's domains that DMARC does not authenticate."""

    ENFORCE = "enforce"  # refuse at SMTP time (5.7.1)
    QUARANTINE = "quarantine"  # deliver into the recipient's Junk folder
    MONITOR = "monitor"  # deliver; the Authentication-Results field says dmarc=fail


class SpamOff(StrEnum):
    OFF = "off"


class Alignment(StrEnum):
    RELAXED = "r"
    STRICT = "s"


class MtaStsMode(StrEnum):
    NONE = "none"
    TESTING = "testing"
    ENFORCE = "enforce"


class TlsSource(StrEnum):
    SELF_SIGNED = "self-signed"
    FILES = "files"
    ACME = "acme"
