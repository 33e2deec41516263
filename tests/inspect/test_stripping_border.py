"""Issue 15 case 10 without --verify: our MX hosts remove every Authentication-Results a message
arrives with (rspamd, docs/inbound.md), and Postfix puts the filter's own field right BELOW the
host's Received line. Where such a host is the border, a field with its authserv-id below its
line is its own; anywhere else the old rule stands (below the border = came with the message)."""

from __future__ import annotations

import pytest

from provisioner.inspect import Trust, inspect_message, parse_message
from provisioner.site.validate import load_site
from tests.conftest import EXAMPLES
from tests.inspect.conftest import message

SITE = load_site(EXAMPLES / "multi-host" / "site.yaml").site  # mx1 (mx), mx2 (backup-mx), out1 (relay)
FROM_OUTSIDE = "198.51.100.7"


def received_by(host: str) -> str:
    return f"Received: from mail.sender.test (mail.sender.test [{FROM_OUTSIDE}]) by {host} (Postfix) with ESMTPS id 4Ab; Mon, 23 Nov 2026 10:00:00 +0000"


def results(authserv: str) -> str:
    return f"Authentication-Results: {authserv}; dkim=pass header.d=sender.test; spf=pass smtp.mailfrom=sender.test; dmarc=pass header.from=sender.test"


def delivered(border: str, claimed: str) -> bytes:
    """As delivered: the border's Received line, then (below it) a field claiming `claimed`."""
    return message(
        "Return-Path: <news@sender.test>",
        received_by(border),
        results(claimed),
        "From: News <news@sender.test>",
        "To: alice@acme.example",
        "Subject: news",
        "Date: Mon, 23 Nov 2026 10:00:00 +0000",
        "Message-ID: <1@sender.test>",
    )


def verdict(data: bytes, trust: Trust) -> tuple[str, list[bool]]:
    inspection = inspect_message(parse_message("m.eml", data), trust, None)
    return str(inspection.verdict), [r.trusted for r in inspection.authentication_results]


@pytest.mark.parametrize("mx", ["mx1.acme.example", "mx2.acme.example"])
def test_an_mx_of_the_site_is_believed_below_its_own_received_line(mx: str) -> None:
    got, trusted = verdict(delivered(mx, mx), Trust.from_site(SITE))
    assert trusted == [True] and got == "pass"


def test_a_field_claiming_another_of_our_hosts_below_the_border_is_still_forged() -> None:
    # mx1 removed every field it received: one naming mx2 below mx1's line came with the message
    got, trusted = verdict(delivered("mx1.acme.example", "mx2.acme.example"), Trust.from_site(SITE))
    assert trusted == [False] and got != "pass"


def test_a_server_not_known_to_strip_is_not_believed_below_its_line() -> None:
    # --trust names a server; nothing says it removes what senders wrote: the old rule
    got, trusted = verdict(delivered("mx1.acme.example", "mx1.acme.example"), Trust.of(["mx1.acme.example"]))
    assert trusted == [False] and got != "pass"


def test_a_host_of_the_site_that_receives_no_internet_mail_does_not_strip() -> None:
    # out1 (relay) runs no filter on port 25: a field under its line is the sender's
    got, trusted = verdict(delivered("out1.acme.example", "out1.acme.example"), Trust.from_site(SITE))
    assert trusted == [False] and got != "pass"
