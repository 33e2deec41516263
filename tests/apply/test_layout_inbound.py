"""provisioner.layout for rspamd hosts (issue 15): what the role installs, starts first, reloads,
retires and compiles, from the paths of a host's tree."""

from __future__ import annotations

import itertools

import pytest

from provisioner.layout import RELEASE_MAJOR, SERVICE_MARKERS, host_layout
from provisioner.render.dovecot import JUNK_SIEVE
from provisioner.render.rspamd import MARKER

MARKERS = SERVICE_MARKERS


def test_the_role_reads_rspamd_from_the_renderers_marker() -> None:
    assert SERVICE_MARKERS["rspamd"] == MARKER


@pytest.mark.parametrize("release", sorted(RELEASE_MAJOR))
@pytest.mark.parametrize("present", [set(c) for n in range(len(MARKERS) + 1) for c in itertools.combinations(MARKERS, n)])
def test_every_mix_of_services(release: str, present: set[str]) -> None:
    """rspamd is started before Postfix (the role starts in reverse) and reloads on local.d;
    OpenDKIM is retired exactly where rspamd runs without it."""
    layout = host_layout([MARKERS[name] for name in present] + ["/etc/rspamd/local.d/actions.conf"], release)
    assert set(layout["services"]) == present
    started = list(reversed(layout["services"]))
    if {"rspamd", "postfix"} <= present:
        assert started.index("rspamd") < started.index("postfix")
    if "rspamd" in present:
        assert layout["units"]["rspamd"] == "rspamd" and layout["reload_on"]["rspamd"] == ["/etc/rspamd/local.d/"]
    assert layout["retired"] == ({"opendkim": "opendkim"} if "rspamd" in present and "opendkim" not in present else {})


def test_sieve_scripts_are_listed_for_sievec() -> None:
    layout = host_layout([MARKERS["dovecot"], JUNK_SIEVE, "/etc/dovecot/conf.d/x.conf", "/etc/postfix/junk.sieve"], "debian-13")
    assert layout["sieve"] == [JUNK_SIEVE]
    assert host_layout([MARKERS["postfix"]], "debian-13")["sieve"] == []
