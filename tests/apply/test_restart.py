"""What restarts instead of reloading: the layout's rules (provisioner/layout.py) as the role's
module applies them (roles/mailhost/library/mailhost_stage.py), judged by the real postconf."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisioner.layout import RELOAD_ON, RESTART_ON, RESTART_POSTCONF, host_layout, main_cf_values
from tests.apply.test_stage_module import stage_module

WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.:", min_size=1, max_size=12)


@given(st.lists(st.tuples(st.sampled_from(["inet_interfaces", "inet_protocols", "myhostname"]), st.lists(WORD, min_size=1, max_size=4)), max_size=6))
def test_main_cf_values_takes_the_last_assignment_with_its_continuation_lines(assignments: list[tuple[str, list[str]]]) -> None:
    lines = ["# inet_interfaces = a comment"]
    for name, words in assignments:
        lines.append(f"{name} = {words[0]}")
        lines += [f"    {word}" for word in words[1:]]  # postconf(5): a line that starts with whitespace continues
        lines.append("")
    expected: dict[str, str | None] = dict.fromkeys(RESTART_POSTCONF)
    for name, words in assignments:
        if name in expected:
            expected[name] = " ".join(words)
    assert main_cf_values("\n".join(lines), RESTART_POSTCONF) == expected


def test_the_layout_restarts_opendkim_and_names_each_release_s_postfix_unit() -> None:
    paths = ["/etc/postfix/main.cf", "/etc/dovecot/dovecot.conf", "/etc/opendkim.conf"]
    thirteen, twelve = host_layout(paths, "debian-13", "inet_protocols = ipv4\n"), host_layout(paths, "debian-12")
    assert (thirteen["os"], thirteen["os_major"], twelve["os_major"]) == ("debian-13", "13", "12")
    assert thirteen["units"]["postfix"] == "postfix" and twelve["units"]["postfix"] == "postfix@-"
    assert thirteen["restart_on"] == {"opendkim": list(RESTART_ON["opendkim"])} == {"opendkim": list(RELOAD_ON["opendkim"])}
    assert thirteen["restart_postconf"] == {"inet_interfaces": None, "inet_protocols": "ipv4"}
    assert host_layout(["/etc/opendkim.conf"], "debian-13")["restart_postconf"] == {}  # no Postfix, nothing to compare


def test_a_change_below_a_restart_path_restarts_and_is_not_also_reloaded(tmp_path: Path) -> None:
    live = tmp_path / "etc/opendkim.conf"
    staged = tmp_path / "staged"
    (staged / str(live).lstrip("/")).parent.mkdir(parents=True)
    (staged / str(live).lstrip("/")).write_text("Socket local:/new\n")
    args = {"reload_on": {"opendkim": [str(live)]}, "restart_on": {"opendkim": [str(live)]}}
    report = stage_module.install(str(staged), args, check=True)
    assert (report["reload"], report["restart"]) == ([], ["opendkim"])
    assert stage_module.install(str(staged), {"reload_on": args["reload_on"]}, check=True)["reload"] == ["opendkim"]


@pytest.mark.skipif(not shutil.which("postconf"), reason="needs Postfix's postconf")
@pytest.mark.parametrize(
    ("live_main_cf", "wanted", "changed"),
    [
        ("inet_protocols = ipv4, ipv6\n", {"inet_protocols": "ipv4,ipv6"}, []),  # the same words
        ("inet_protocols = ipv4, ipv6\n", {"inet_protocols": "ipv4"}, ["inet_protocols"]),
        ("inet_interfaces = all\n", {"inet_interfaces": None}, []),  # None: Postfix's default, which is all
        ("inet_interfaces = 127.0.0.1\n", {"inet_interfaces": None}, ["inet_interfaces"]),
        ("", {"inet_interfaces": "all", "inet_protocols": "all"}, []),
    ],
)
def test_postconf_changes_compares_the_live_values_with_the_build_s(
    tmp_path: Path, live_main_cf: str, wanted: dict[str, str | None], changed: list[str]
) -> None:
    (tmp_path / "main.cf").write_text(live_main_cf)
    assert stage_module.postconf_changes(str(tmp_path), wanted) == changed
    assert stage_module.restarts(set(), stage_module.postconf_changes(str(tmp_path), wanted), {}) == (["postfix"] if changed else [])


def test_without_a_live_main_cf_nothing_is_restarted(tmp_path: Path) -> None:
    assert stage_module.postconf_changes(str(tmp_path), {"inet_protocols": "ipv4"}) == []
