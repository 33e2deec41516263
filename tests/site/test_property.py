"""Random and malformed documents: either valid, or errors with positions. Never a traceback."""

from __future__ import annotations

import string

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provisioner.errors import SiteInvalid
from provisioner.site.validate import load_site
from tests.conftest import MINIMAL

KEYS = [
    "version",
    "name",
    "hosts",
    "domains",
    "policy",
    "relay",
    "tls",
    "fqdn",
    "services",
    "ipv4",
    "mailboxes",
    "aliases",
    "password",
    "mx1",
    "t.example",
    "catch_all",
    "relay_to",
    "quota",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 70000),
    st.floats(allow_nan=False),
    st.text(alphabet=string.printable + "例え\u00e9", max_size=20),
    st.sampled_from(["mx", "relay", "2G", "{ARGON2ID}x", "0.0.0.0/0", "例え.jp"]),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), children, max_size=5)),
    max_leaves=30,
)


def check(path) -> None:
    try:
        load_site(path)
    except SiteInvalid as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.line >= 1 and problem.column >= 1
            assert problem.message


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(documents)
def test_random_documents(write_site, document) -> None:
    check(write_site(yaml.safe_dump(document, allow_unicode=True)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, len(MINIMAL) - 1), st.integers(1, 20), st.text(alphabet=string.printable + "\x00é", max_size=6))
def test_mangled_valid_site(write_site, at: int, cut: int, insert: str) -> None:
    check(write_site(MINIMAL[:at] + insert + MINIMAL[at + cut :]))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200))
def test_random_bytes(tmp_path, data: bytes) -> None:
    path = tmp_path / "site.yaml"
    path.write_bytes(data)
    check(path)
