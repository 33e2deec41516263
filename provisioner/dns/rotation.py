"""What a DKIM rotation asks of the person who keeps DNS: which records to publish now, which to
keep until when, which to revoke and remove, with dates (docs/keys.md, "Selectors and rotation").

The dates follow the key state's rules (provisioner.keys.store): a retired generation stays
published RETIRED_DAYS, then is published revoked for WITHDRAWN_DAYS, then removed; a standby can
be rotated to PUBLISH_GRACE_DAYS after it was made. Lines of text for the command line, in the
order a person acts on them; values whole (a DNS panel takes the value as one string).
"""

from __future__ import annotations

import datetime as dt

from provisioner.dns.records import REVOKED_DKIM, dkim_value
from provisioner.keys.store import RETIRED_DAYS, WITHDRAWN_DAYS, KeyState, KeyStatus, standby_ready


def _day(since: str, days: int) -> str:
    return (dt.date.fromisoformat(since) + dt.timedelta(days=days)).isoformat()


def rotation_report(keys: KeyState, domain: str, today: dt.date) -> list[str]:
    """The DNS work for `domain` after a rotation on `today`, one instruction or record a line."""
    gens = keys.domains.get(domain, [])
    lines = [f"{domain}:"]
    signing = ", ".join(k.selector for k in keys.signing_keys(domain))
    lines.append(f"  signing now with {signing}: its record was published as the standby; keep it")
    standby = keys.keys(domain, (KeyStatus.STANDBY,))
    if standby:
        ready = min(standby_ready(g) for g in gens if g.status is KeyStatus.STANDBY).isoformat()
        lines.append(f"  publish now (the new standby, not signing; the next rotation is allowed from {ready}):")
        lines += [f"    {k.selector}._domainkey.{domain} TXT {dkim_value(keys, k)}" for k in standby]
    for gen in gens:
        names = [f"{gen.selector(a)}._domainkey.{domain}" for a in sorted(gen.algorithms)]
        if gen.status is KeyStatus.RETIRED:
            until = _day(gen.since, RETIRED_DAYS)
            lines.append(
                f"  keep until {until} (retired {gen.since}: mail signed before may still be verified), "
                f'then publish it revoked (TXT "{REVOKED_DKIM}") until {_day(until, WITHDRAWN_DAYS)}, then remove it:'
            )
            lines += [f"    {name}" for name in names]
        elif gen.status is KeyStatus.WITHDRAWN:
            age = (today - dt.date.fromisoformat(gen.since)).days
            if age < WITHDRAWN_DAYS:
                lines.append(f'  publish revoked (TXT "{REVOKED_DKIM}") until {_day(gen.since, WITHDRAWN_DAYS)}, then remove it:')
                lines += [f"    {name} TXT {REVOKED_DKIM}" for name in names]
            elif age < 2 * WITHDRAWN_DAYS:  # recently expired: say so once more, then forget it
                lines.append(f"  remove (revoked since {gen.since}, no longer listed):")
                lines += [f"    {name}" for name in names]
    lines.append("  then: provision render (build/dns/ holds every record) and provision apply")
    return lines
