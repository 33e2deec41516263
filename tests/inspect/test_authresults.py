"""inspect/authresults.py: Authentication-Results and ARC-Authentication-Results read, and trusted only from a trusted server."""

from __future__ import annotations

from provisioner.inspect import Trust, Verdict, inspect_message, parse_message
from provisioner.inspect.authresults import parse_authres
from tests.inspect.conftest import DATE, message


def test_authres_parses_properties_comments_and_refuses_garbage() -> None:
    authserv, results, error = parse_authres(
        "mx.google.com; dkim=pass header.i=@example.com header.s=s1 header.b=abc; "
        "spf=pass (google.com: domain of a@example.com designates 192.0.2.1 as permitted sender) smtp.mailfrom=a@example.com; "
        "dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=example.com; arc=none"
    )
    assert (authserv, error) == ("mx.google.com", "")
    assert [(r.method, r.result) for r in results] == [("dkim", "pass"), ("spf", "pass"), ("dmarc", "pass"), ("arc", "none")]
    assert results[1].prop("smtp", "mailfrom") == "a@example.com" and results[0].prop("header", "s") == "s1"
    authserv, results, error = parse_authres("mx.example.com; spf")
    assert authserv == "mx.example.com" and results == () and "Expected" in error


def test_arc_authentication_results_instance_and_no_counting() -> None:
    raw = message(
        "ARC-Authentication-Results: i=1; mx.example.com; dkim=pass header.d=example.org; dmarc=pass header.from=example.org",
        "Received: from x.test (x.test [192.0.2.9]) by mx.example.com with ESMTP; " + DATE,
        "From: a@example.org",
        f"Date: {DATE}",
    )
    got = inspect_message(parse_message("m", raw), Trust.of(["mx.example.com"]))
    (header,) = got.authentication_results
    assert header.arc_instance == 1 and header.trusted and header.results[0].method == "dkim"
    assert got.verdict is Verdict.UNKNOWN  # ARC records what an earlier hop saw; it is not this receiver's result


def test_malformed_results_from_a_trusted_server_are_not_counted() -> None:
    raw = message("Authentication-Results: mx.example.com; dmarc", "From: a@example.org")
    got = inspect_message(parse_message("m", raw), Trust.of(["mx.example.com"]))
    (header,) = got.authentication_results
    assert not header.trusted and header.error and got.verdict is Verdict.UNKNOWN
