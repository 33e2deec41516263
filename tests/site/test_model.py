"""provisioner.site.model's derived views: a domain's policy over the site's, and which hosts send."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from provisioner.site.model import Site
from provisioner.site.types import DmarcPolicy, MtaStsMode, Service
from provisioner.site.validate import load_site
from tests.conftest import EXAMPLES

BASE = {
    "version": 1,
    "name": "s",
    "hosts": {"mx1": {"fqdn": "mx1.a.example", "ipv4": ["192.0.2.1"], "services": ["mx", "imap"], "mx_priority": 10}},
    "policy": {"dmarc": {"p": "reject", "rua": ["mailto:d@a.example"]}, "mta_sts": {"mode": "testing"}, "spf": {"include": ["x.example"]}},
}


def test_a_domain_overrides_only_the_keys_it_sets() -> None:
    site = Site.model_validate(BASE | {"domains": {"a.example": {"dmarc": {"p": "none"}}, "b.example": {}}})
    a, b = site.dmarc_policy("a.example"), site.dmarc_policy("b.example")
    assert (a.p, a.rua) == (DmarcPolicy.NONE, ("mailto:d@a.example",))  # p from the domain, rua from the site
    assert b == site.policy.dmarc
    assert site.mta_sts_policy("a.example").mode is MtaStsMode.TESTING
    assert site.spf_policy("b.example").include == ("x.example",)
    assert site.dkim_policy("a.example") == site.policy.dkim and site.tls_rpt_policy("a.example") == site.policy.tls_rpt


def test_every_example_host_sends_and_the_order_is_by_name() -> None:
    site = load_site(EXAMPLES / "multi-host" / "site.yaml").site
    assert [name for name, _ in site.sending_hosts] == sorted(site.hosts)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sets(st.sampled_from([s.value for s in Service if s is not Service.BACKUP_MX]), min_size=1).filter(lambda s: s != {"web"}), min_size=1, max_size=4))
def test_a_host_sends_when_any_of_its_services_sends_mail(services: list[set[str]]) -> None:
    hosts = {f"h{i}": {"fqdn": f"h{i}.a.example", "services": sorted(s), **({"mx_priority": 10} if "mx" in s else {})} for i, s in enumerate(services)}
    site = Site.model_validate(BASE | {"hosts": hosts})
    senders = {name for name, _ in site.sending_hosts}
    assert senders == {name for name, host in site.hosts.items() if host.signs_mail or host.receives_internet_mail or host.stores_mailboxes}
    assert senders == set(site.hosts)  # every service we offer sends: no host may be left out of SPF


def test_web_alone_is_not_a_host() -> None:
    with pytest.raises(ValidationError, match="web is served by a mail host"):
        Site.model_validate(BASE | {"hosts": {"w": {"fqdn": "w.a.example", "services": ["web"]}}})
