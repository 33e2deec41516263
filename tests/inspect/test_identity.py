"""inspect/identity.py: alignment of an identifier with the From domain, organizational domains."""

from __future__ import annotations

import pytest

from provisioner.inspect.identity import AlignmentResult, alignment, organizational_domain


@pytest.mark.parametrize(
    ("identifier", "from_domain", "want"),
    [
        ("example.com", "example.com", AlignmentResult.STRICT),
        ("Bounce.Example.COM.", "example.com", AlignmentResult.RELAXED),
        ("mail.example.co.uk", "news.example.co.uk", AlignmentResult.RELAXED),
        ("example.co.uk", "other.co.uk", AlignmentResult.NONE),  # co.uk is a public suffix
        ("evil.test", "example.com", AlignmentResult.NONE),
        ("", "example.com", AlignmentResult.UNKNOWN),
        ("xn--4dkua4c.jp", "メール.jp", AlignmentResult.STRICT),  # IDN compared as A-labels
    ],
)
def test_alignment(identifier: str, from_domain: str, want: AlignmentResult) -> None:
    assert alignment(identifier, from_domain) is want


def test_organizational_domain() -> None:
    assert organizational_domain("a.b.example.co.uk") == "example.co.uk"
    assert organizational_domain("mx1.smallco.example") == "smallco.example"
