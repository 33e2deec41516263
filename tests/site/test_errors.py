"""Every validation rule: the exact message a user sees, with its line and column."""

from __future__ import annotations

import pytest

from provisioner.errors import SiteInvalid
from provisioner.site.validate import load_site
from tests.conftest import ALICE_HASH, MINIMAL

H = ALICE_HASH


def errors_of(write_site, text: str) -> list[str]:
    path = write_site(text)
    with pytest.raises(SiteInvalid) as caught:
        load_site(path)
    prefix = str(path) + ":"
    return [str(p).removeprefix(prefix) for p in caught.value.problems]


CASES = [
    (
        "unknown key with a close match",
        MINIMAL.replace("    services:", "    servics: [mx]\n    services:"),
        ["7:5: hosts.mx1.servics: unknown key (hint: did you mean services?)"],
    ),
    (
        "unknown top-level key",
        MINIMAL + "polcy: {}\n",
        ["14:1: polcy: unknown key (hint: did you mean policy?)"],
    ),
    (
        "service not in the closed set",
        MINIMAL.replace("[mx, submission, imap]", "[mx, submision, imap]"),
        ["7:20: hosts.mx1.services[1]: 'submision' is not one of: mx, backup-mx, submission, imap, pop3, relay, web (hint: did you mean submission?)"],
    ),
    (
        "duplicate key",
        MINIMAL.replace("    mx_priority: 10\n", "    mx_priority: 10\n    mx_priority: 20\n"),
        ["9:5: hosts.mx1.mx_priority: duplicate key (hint: each key may appear only once in a mapping; merge the two entries)"],
    ),
    (
        "duplicate key in a flow mapping",
        MINIMAL.replace("aliases: {postmaster: alice}", "aliases: {postmaster: alice, postmaster: alice}"),
        ["13:34: domains.t.example.aliases.postmaster: duplicate key (hint: each key may appear only once in a mapping; merge the two entries)"],
    ),
    (
        "plaintext password",
        MINIMAL.replace(f'"{H}"', "hunter2"),
        [
            "12:25: domains.t.example.mailboxes.alice.password: plaintext is not accepted; a password must be a Dovecot scheme-prefixed hash (hint: run `provision passwd` and paste the {ARGON2ID} hash it prints)"
        ],
    ),
    (
        "weak password scheme",
        MINIMAL.replace(f'"{H}"', '"{MD5}abc"'),
        [
            "12:25: domains.t.example.mailboxes.alice.password: the password scheme {MD5} is not accepted (weak or plaintext) (hint: use {ARGON2ID}, {BLF-CRYPT} or {SHA512-CRYPT}; `provision passwd` prints an {ARGON2ID} hash)"
        ],
    ),
    (
        "mx without priority",
        MINIMAL.replace("    mx_priority: 10\n", ""),
        ["4:3: hosts.mx1.mx_priority: required for a host with mx or backup-mx (hint: e.g. mx_priority: 10 (lower is preferred))"],
    ),
    (
        "alias to a mailbox that does not exist",
        MINIMAL.replace("aliases: {postmaster: alice}", "aliases: {postmaster: alice, info: alise}"),
        ["13:40: domains.t.example.aliases.info: 'alise' is not a mailbox or alias of t.example (hint: did you mean alice?)"],
    ),
    (
        "catch-all to nowhere",
        MINIMAL + "    catch_all: nobody\n",
        [
            "14:16: domains.t.example.catch_all: 'nobody' is not a mailbox or alias of t.example (hint: name a mailbox or alias of this domain, or a full address)"
        ],
    ),
    (
        "no postmaster",
        MINIMAL.replace("    aliases: {postmaster: alice}\n", ""),
        ["10:3: domains.t.example: no postmaster address (hint: add `postmaster: <mailbox>` under aliases (RFC 5321 §4.5.1))"],
    ),
    (
        "relay network 0.0.0.0/0",
        MINIMAL.replace("[mx, submission, imap]", "[mx, submission, imap, relay]") + "relay: {networks: [0.0.0.0/0]}\n",
        [
            "14:20: relay.networks[0]: 0.0.0.0/0 is far too wide for a trusted network: every address in it may relay mail without a password (hint: list only your own LAN or server networks, e.g. 192.168.10.0/24 (an open relay is abused within hours))"
        ],
    ),
    (
        "relay network ::/0",
        MINIMAL.replace("[mx, submission, imap]", "[mx, submission, imap, relay]") + "relay: {networks: ['::/0']}\n",
        [
            "14:20: relay.networks[0]: ::/0 is far too wide for a trusted network: every address in it may relay mail without a password (hint: list only your own LAN or server networks, e.g. 192.168.10.0/24 (an open relay is abused within hours))"
        ],
    ),
    (
        "relay networks but no relay host",
        MINIMAL + "relay: {networks: [192.168.10.0/24]}\n",
        [
            "14:9: relay.networks: trusted networks are declared but no host has the relay service (hint: add relay to a host's services, or remove relay.networks)"
        ],
    ),
    (
        "two mailbox hosts",
        MINIMAL.replace("domains:", "  st2:\n    fqdn: st2.t.example\n    services: [pop3]\ndomains:"),
        ["11:15: hosts.st2.services: only one host may store mailboxes (imap/pop3); mx1 already does (hint: move imap/pop3 to one host)"],
    ),
    (
        "mailboxes but no mx host",
        MINIMAL.replace("[mx, submission, imap]", "[submission, imap]").replace("    mx_priority: 10\n", ""),
        ["3:1: hosts: domains receive mail (t.example, ...) but no host has the mx service (hint: add mx to a host's services)"],
    ),
    (
        "a value that would break out of its config line",
        MINIMAL.replace("mx1.t.example", '"mx1.t.example\\nmynetworks = 0.0.0.0/0"'),
        ["5:11: hosts.mx1.fqdn: 'mx1.t.example\\nmynetworks = 0.0.0.0/0' is not a valid domain name (hint: no spaces or line breaks)"],
    ),
    (
        "a local part with a comma",
        MINIMAL.replace("alice: {password", '"al,ice": {password'),
        [
            "12:7: domains.t.example.mailboxes.al,ice: 'al,ice' is not an accepted local part (hint: letters, digits and . _ - (not first or last, no '..'; + is the tag delimiter), at most 64 characters)"
        ],
    ),
    (
        "a transport with a space",
        MINIMAL + "relay: {transports: {partner.example: 'smtp:[mx.partner.example]:25 x'}}\n",
        [
            "14:39: relay.transports.partner.example: 'smtp:[mx.partner.example]:25 x' is not an accepted transport (hint: write TRANSPORT:[NEXT-HOP]:PORT, e.g. \"smtp:[mx.partner.example]:25\" (brackets: no MX lookup))"
        ],
    ),
    (
        "secret written inline",
        MINIMAL + "relay: {smarthost: {host: smtp.p.example, username: u, password: hunter2}}\n",
        [
            "14:66: relay.smarthost.password: secrets are never written in the site file (hint: use {env: NAME} or {file: relative/path}, resolved when rendering)"
        ],
    ),
    (
        "ed25519 alone",
        MINIMAL + "policy: {dkim: {keys: [ed25519]}}\n",
        ["14:23: policy.dkim.keys: ed25519 is accepted only beside an RSA key (hint: e.g. keys: [rsa-2048, ed25519])"],
    ),
    (
        "non-mailto DMARC rua",
        MINIMAL + "policy: {dmarc: {rua: ['https://x.example/r']}}\n",
        ["14:23: policy.dmarc.rua: DMARC rua 'https://x.example/r' is not a mailto: URI (hint: e.g. mailto:dmarc@example.com)"],
    ),
    (
        "IDN domain: errors name it as written",
        MINIMAL.replace("t.example:", "例え.jp:").replace("{postmaster: alice}", "{postmaster: alicia}"),
        ["13:27: domains.xn--r8jz45g.jp.aliases.postmaster: 'alicia' is not a mailbox or alias of xn--r8jz45g.jp (hint: did you mean alice?)"],
    ),
    (
        "two spellings of one domain",
        MINIMAL + "  T.Example: {}\n",
        ["14:3: domains.T.Example: 'T.Example' is the same as 't.example' (names are case-insensitive) (hint: merge the two entries)"],
    ),
    (
        "host named like a mail domain",
        MINIMAL.replace("fqdn: mx1.t.example", "fqdn: t.example"),
        ["5:11: hosts.mx1.fqdn: t.example is a mail domain of this site; a host needs its own name (hint: e.g. mail.t.example)"],
    ),
    (
        "SPF over ten lookups",
        MINIMAL
        + "policy: {spf: {include: [a.example, b.example, c.example, d.example, e.example, f.example, g.example, h.example, i.example, j.example, k.example]}}\n",
        [
            "14:25: policy.spf.include: 11 includes: SPF allows at most 10 DNS lookups (RFC 7208 §4.6.4), receivers would return permerror (hint: drop includes, or ask the providers for ip4/ip6 ranges)"
        ],
    ),
    (
        "MTA-STS enforce with self-signed certificates",
        MINIMAL + "policy: {mta_sts: {mode: enforce}}\n",
        [
            "14:26: policy.mta_sts.mode: enforce with tls.source: self-signed: senders that honour MTA-STS would refuse to deliver (hint: use testing until the hosts have certificates from a public CA (tls.source: acme, or files))"
        ],
    ),
    (
        "a resolver given by name",
        MINIMAL + "policy: {resolvers: [192.0.2.53, dns.example]}\n",
        ["14:34: policy.resolvers[1]: 'dns.example' is not an IP address (hint: e.g. 192.0.2.53 or 2001:db8::53)"],
    ),
    (
        "several problems in one run",
        MINIMAL.replace("name: t", "name: T_1").replace("192.0.2.10", "192.0.2.300").replace("[mx, submission, imap]", "[mx, smtp, imap]"),
        [
            "2:7: name: 'T_1' is not an accepted name (hint: lower-case letters, digits and '-', e.g. mx1)",
            "6:12: hosts.mx1.ipv4[0]: '192.0.2.300' is not an IPv4 address (hint: e.g. 203.0.113.10)",
            "7:20: hosts.mx1.services[1]: 'smtp' is not one of: mx, backup-mx, submission, imap, pop3, relay, web (hint: did you mean imap?)",
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_error_message_and_position(write_site, text: str, expected: list[str]) -> None:
    assert errors_of(write_site, text) == expected


def test_minimal_site_is_valid(write_site) -> None:
    site = load_site(write_site(MINIMAL)).site
    assert site.hosted_domains == ["t.example"]
