"""Generate a large, valid site file for benchmarks.

usage: python bench/gen_site.py DOMAINS [MAILBOXES_PER_DOMAIN] [ALIASES_PER_DOMAIN] > site.yaml

Defaults give the issue's reference size for 5,000 domains: 10 mailboxes and 4 aliases per
domain (50,000 mailboxes, 20,000 aliases). The password is one fixed, real ARGON2ID hash of the
password "bench" (made once by `provisioner.passwd.hash_password("bench")`), so the file is
deterministic and the hash verifies.
"""

from __future__ import annotations

import sys

HASH = "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$KohfWYaQWPoXn6J9qC0LFw$+ni9wq7RrP12RyMBiLDiFBl1LpkhEpiPGy2nPEgXLL4"


def generate(domains: int, mailboxes: int = 10, aliases: int = 4) -> str:
    out = [
        "# yaml-language-server: $schema=../docs/site.schema.json",
        "version: 1",
        "name: bench",
        "hosts:",
        "  mx1:",
        "    fqdn: mx1.bench.example",
        "    ipv4: [192.0.2.10]",
        "    services: [mx, submission, imap, pop3]",
        "    mx_priority: 10",
        "  mx2:",
        "    fqdn: mx2.bench.example",
        "    ipv4: [192.0.2.20]",
        "    services: [backup-mx]",
        "    mx_priority: 20",
        "domains:",
    ]
    for d in range(domains):
        out.append(f"  d{d:05d}.bench.example:")
        out.append("    mailboxes:")
        for m in range(mailboxes):
            out.append(f"      user{m:02d}:")
            out.append(f'        password: "{HASH}"')
            out.append("        quota: 1G")
            if m == 0:
                out.append("        aliases: [postmaster, abuse]")
        if aliases:
            out.append("    aliases:")
        for a in range(aliases):
            out.append(f"      team{a:02d}: [user{a:02d}, user{(a + 1) % mailboxes:02d}]")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]] or [5000]
    sys.stdout.write(generate(*args))
