"""provisioner.render.postfix: main.cf is ordered data, each key set once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from provisioner.render.postfix import Section
from tests.conftest import ROOT


def test_a_key_set_twice_in_a_section_is_a_bug_not_a_silent_override() -> None:
    section = Section("SMTP server")
    section.set("smtpd_tls_security_level", "may", "PF-04")
    with pytest.raises(ValueError, match="smtpd_tls_security_level set twice"):
        section.set("smtpd_tls_security_level", "encrypt")
    assert section.params == [("smtpd_tls_security_level", "may", "PF-04")]


@pytest.mark.parametrize(
    "main_cf", sorted((ROOT / "tests" / "golden").glob("*/*/etc/postfix/main.cf")), ids=lambda p: str(p.parent.parent.parent.relative_to(ROOT))
)
def test_no_rendered_main_cf_sets_a_key_twice(main_cf: Path) -> None:
    # Postfix takes the last of two settings without a word (postconf(5)); across sections too.
    keys = [line.partition(" = ")[0] for line in main_cf.read_text(encoding="utf-8").splitlines() if line and not line.startswith((" ", "\t", "#"))]
    assert keys and [k for k, n in Counter(keys).items() if n > 1] == []
