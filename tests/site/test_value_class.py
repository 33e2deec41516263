"""The class behind item 5 of issue 11: no string field of the site accepts an invisible character.

The JSON Schema (`provision schema`) lists every field that can hold a string: values, list items
and mapping keys. Two valid sites built from examples/multi-host hold a value in each of them
(a test fails when a field is added without one here). Each value in turn gets LF, CR, NUL, TAB,
VT, ESC, DEL, U+2028, U+0085 or U+202E at its start, middle and end; validation must refuse the
site with an error naming that field. No normalisation is applied to any field (none is
documented), so an error is required everywhere. Likewise every integer field refuses booleans,
quoted numbers and floats.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import yaml_rs

from provisioner.site.loader import PathKey
from provisioner.site.schema import site_schema
from provisioner.site.validate import Issue, validate_data
from tests.conftest import EXAMPLES

INVISIBLE = {
    "LF": "\n",
    "CR": "\r",
    "NUL": "\x00",
    "TAB": "\t",
    "VT": "\x0b",
    "ESC": "\x1b",
    "DEL": "\x7f",
    "LSEP": "\u2028",
    "NEL": "\u0085",
    "RLO": "\u202e",
}
SCHEMA = site_schema()
Generic = tuple[str, ...]


def _rich_sites() -> list[dict[str, Any]]:
    """examples/multi-host plus a value for every optional string field; valid, as checked below."""
    site = yaml_rs.loads((EXAMPLES / "multi-host/site.yaml").read_text(), parse_datetime=False)
    assert isinstance(site, dict)
    site["hosts"]["mx1"]["ansible"].update(port=2222, connection="ssh")
    site["hosts"]["mx2"]["ansible"]["host"] = "mx2.acme.example"
    site["hosts"]["mx2"]["os"] = "debian-13"  # issue 13: the release a host runs
    policy = site["policy"]
    policy["spf"]["include"] = ["spf.mailer.example"]
    policy["dmarc"].update(sp="reject", np="reject")
    policy["tls_rpt"]["rua"].append("https://reports.acme.example/tlsrpt")
    policy["dnsbl"] = [{"zone": "zen.spamhaus.org", "weight": 3}]
    policy["resolvers"] = ["192.0.2.53"]
    policy["mta_sts"]["max_age"] = 86400
    policy["inbound"] = {"dmarc": "quarantine", "spam": "off", "trusted_forwarders": ["lists.forwarder.example"]}
    if "tls_ca" in SCHEMA["$defs"]["Smarthost"]["properties"]:  # added by issue 11 item 13
        site["relay"]["smarthost"]["tls_ca"] = {"file": "certs/provider-ca.pem"}
    acme = site["domains"]["acme.example"]
    acme.update(
        spf={"all": "softfail", "include": ["spf.crm.example"]},
        dkim={"keys": ["rsa-3072"]},
        mta_sts={"mode": "none", "max_age": 86400},
        dmarc={"p": "reject", "sp": "none", "np": "quarantine", "adkim": "s", "aspf": "s", "rua": ["mailto:d@acme.example"]},
        tls_rpt={"rua": ["mailto:tls@acme.example"]},
        inbound={"dmarc": "monitor"},
    )
    site["domains"]["例え.jp"]["catch_all"] = ["taro"]
    if "dns" in SCHEMA["properties"]:  # issue 16: where records are pushed
        site["dns"] = {
            "targets": {
                "primary": {
                    "class": "octodns_bind.Rfc2136Provider",
                    "host": "192.0.2.53",
                    "key_name": "provision",
                    "key_secret": {"env": "TSIG_SECRET"},
                    "key_algorithm": "hmac-sha256",
                    "ca_file": {"file": "certs/provider-ca.pem"},
                    "zones": ["acme.example"],
                }
            },
            "reverse": "primary",
        }
        site["domains"]["acme.example"]["dns"] = "primary"
    acme["mailboxes"]["carol"] = {"password": {"env": "CAROL_HASH"}, "quota": "500M"}
    with_files = copy.deepcopy(site)
    with_files["tls"] = {"source": "files", "files": {"cert": "/etc/ssl/mail.pem", "key": "/etc/ssl/private/mail.key"}}
    with_acme = copy.deepcopy(site)
    with_acme["relay"]["smarthost"]["password"] = {"file": "secrets/smarthost"}
    with_acme["tls"] = {
        "source": "acme",
        "acme": {"email": "hostmaster@acme.example", "directory": "https://acme.example/directory", "account_uri": "https://acme.example/acct/1"},
    }
    return [with_files, with_acme]


SITES = _rich_sites()


def _node(node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    return _node(SCHEMA["$defs"][ref.rsplit("/", 1)[-1]]) if ref else node


def _allows(node: dict[str, Any], kind: str) -> bool:
    node = _node(node)
    types = node.get("type", [])
    types = [types] if isinstance(types, str) else types
    if kind in types:
        return True
    return any(_allows(branch, kind) for branch in node.get("oneOf", []) + node.get("anyOf", []))


def _map_value(node: dict[str, Any]) -> dict[str, Any] | None:
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        return extra
    patterns = node.get("patternProperties")
    return next(iter(patterns.values())) if patterns else None


def slots(node: dict[str, Any], kind: str, generic: Generic = ()) -> set[Generic]:
    """Every place the schema lets a value of `kind` stand; '*' is any key, '[]' any item."""
    node = _node(node)
    found = {generic} if _allows(node, kind) else set()
    for branch in node.get("oneOf", []) + node.get("anyOf", []):
        found |= slots(branch, kind, generic)
    for key, child in node.get("properties", {}).items():
        found |= slots(child, kind, (*generic, key))
    if (value := _map_value(node)) is not None:
        if kind == "string":
            found.add((*generic, "<key>"))
        found |= slots(value, kind, (*generic, "*"))
    if isinstance(node.get("items"), dict):
        found |= slots(node["items"], kind, (*generic, "[]"))
    return found


def leaves(node: dict[str, Any], value: Any, kind: type, path: PathKey = (), generic: Generic = ()) -> Iterator[tuple[PathKey, Generic, bool]]:
    """(path, generic path, is a mapping key) of every value of `kind` in the data."""
    node = _node(node)
    if isinstance(value, kind) and not isinstance(value, bool):
        yield path, generic, False
        return
    branches = _branches(node)
    if isinstance(value, dict):
        shape = next(b for b in branches if "properties" in b or _map_value(b) is not None)
        for key, child in value.items():
            if key in shape.get("properties", {}):
                yield from leaves(shape["properties"][key], child, kind, (*path, key), (*generic, key))
            else:
                map_value = _map_value(shape)
                assert map_value is not None, f"{path}: {key} is not in the schema"
                if kind is str:
                    yield (*path, key), (*generic, "<key>"), True
                yield from leaves(map_value, child, kind, (*path, key), (*generic, "*"))
    elif isinstance(value, list):
        items = next(b["items"] for b in branches if isinstance(b.get("items"), dict))
        for index, item in enumerate(value):
            yield from leaves(items, item, kind, (*path, index), (*generic, "[]"))


def _branches(node: dict[str, Any]) -> list[dict[str, Any]]:
    node = _node(node)
    return [node] + [b for branch in node.get("oneOf", []) + node.get("anyOf", []) for b in _branches(branch)]


def replaced(site: dict[str, Any], path: PathKey, new: Any, is_key: bool) -> dict[str, Any]:
    out = copy.deepcopy(site)
    parent: Any = out
    for part in path[:-1]:
        parent = parent[part]
    if is_key:
        items = [(new if k == path[-1] else k, v) for k, v in parent.items()]
        parent.clear()
        parent.update(items)
    else:
        parent[path[-1]] = new
    return out


def names_field(issues: list[Issue], path: PathKey) -> bool:
    """An issue at the value itself, or at the field holding it (a list, a secret reference)."""
    accepted = {path}
    if path and (isinstance(path[-1], int) or path[-1] in ("env", "file")):
        accepted.add(path[:-1])
    return any(issue.path in accepted for issue in issues)


STRING_LEAVES = sorted({(path, generic, is_key) for site in SITES for path, generic, is_key in leaves(SCHEMA, site, str)}, key=repr)
INT_LEAVES = sorted({(path, generic) for site in SITES for path, generic, _ in leaves(SCHEMA, site, int)}, key=repr)


def _site_of(path: PathKey, is_key: bool) -> dict[str, Any]:
    return next(site for site in SITES if any(leaf[0] == path and leaf[2] == is_key for leaf in leaves(SCHEMA, site, str)))


def test_the_sites_are_valid() -> None:
    for site in SITES:
        assert validate_data(copy.deepcopy(site))[1] == []


def test_every_string_field_of_the_schema_has_a_value_here() -> None:
    covered = {generic for _, generic, _ in STRING_LEAVES}
    missing = slots(SCHEMA, "string") - covered
    assert not missing, f"add a value for these string fields to _rich_sites(): {sorted(missing)}"


def test_every_integer_field_of_the_schema_has_a_value_here() -> None:
    ints = {g for g in slots(SCHEMA, "integer") if g not in slots(SCHEMA, "string")}
    assert ints - {generic for _, generic in INT_LEAVES} == set()


@pytest.mark.parametrize(("path", "generic", "is_key"), STRING_LEAVES, ids=[".".join(map(str, leaf[0])) + (" (key)" if leaf[2] else "") for leaf in STRING_LEAVES])
def test_invisible_characters_are_refused_in(path: PathKey, generic: Generic, is_key: bool) -> None:
    site = _site_of(path, is_key)
    original = path[-1] if is_key else _get(site, path)
    assert isinstance(original, str)
    for label, char in INVISIBLE.items():
        middle = len(original) // 2
        for where, bad in (("start", char + original), ("middle", original[:middle] + char + original[middle:]), ("end", original + char)):
            mutated = replaced(site, path, bad, is_key)
            _, issues = validate_data(mutated)
            target = (*path[:-1], bad) if is_key else path
            assert names_field(issues, target), f"{label} at the {where} of {'.'.join(map(str, path))}: {issues}"


@pytest.mark.parametrize(("path", "generic"), INT_LEAVES, ids=[".".join(map(str, leaf[0])) for leaf in INT_LEAVES])
def test_integers_are_strict_in(path: PathKey, generic: Generic) -> None:
    site = next(s for s in SITES if any(leaf[0] == path for leaf in leaves(SCHEMA, s, int)))
    value = _get(site, path)
    for bad in (True, False, str(value), float(value)):
        _, issues = validate_data(replaced(site, path, bad, False))
        assert names_field(issues, path), f"{bad!r} at {path}: {issues}"


def _get(data: Any, path: PathKey) -> Any:
    for part in path:
        data = data[part]
    return data
