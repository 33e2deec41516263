"""Issue 11, items 5, 6, 7 and the "Also" line: a site file from a pull request is hostile.

Resource tests run the real CLI in a child process under RLIMIT_AS = 1 GiB (the issue's memory
bound), with a generous timeout only as a hang guard: the bench (bench/site_hostile_bench.py)
measures time. Secret-file tests use real symbolic links, a real FIFO and /dev/zero.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from provisioner.errors import SiteInvalid
from provisioner.secrets import MAX_SECRET_BYTES, resolve
from provisioner.site.loader import MAX_BYTES
from provisioner.site.types import SecretRef
from provisioner.site.validate import load_site
from tests.conftest import ALICE_HASH, EXAMPLES, MINIMAL, ROOT
from tests.loaders import load_file

MEMORY_LIMIT = 1 << 30
HANG_GUARD_S = 120


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def validate_cli(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provisioner.cli", "validate", str(path)],
        capture_output=True,
        text=True,
        preexec_fn=_limit_memory,
        timeout=HANG_GUARD_S,
        cwd=ROOT,
    )


def refused(path: Path, *expected: str) -> str:
    """The CLI refuses the file with a FILE:LINE:COL line containing each of `expected`."""
    run = validate_cli(path)
    assert run.returncode == 1, run.stderr[-2000:]
    assert "Traceback" not in run.stderr and "MemoryError" not in run.stderr
    first = run.stderr.splitlines()[0]
    assert re.match(re.escape(str(path)) + r":\d+:\d+: ", first), first
    for text in expected:
        assert text in run.stderr, run.stderr[:2000]
    return run.stderr


def document_with(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(SiteInvalid) as caught:
        load_site(path)
    prefix = f"{path}:"
    return [str(p).removeprefix(prefix) for p in caught.value.problems]


# ---------------------------------------------------------------------------- item 5


def test_a_block_scalar_alias_is_not_a_second_table_line(tmp_path: Path) -> None:
    """`- |` makes 'sales\\n': before the fix it passed and wrote '@domain alice@domain' into virtual."""
    text = MINIMAL.replace(
        f'alice: {{password: "{ALICE_HASH}"}}',
        f'alice:\n        password: "{ALICE_HASH}"\n        aliases:\n          - |\n            sales\n',
    )
    found = problems(document_with(tmp_path, text))
    assert any("domains.t.example.mailboxes.alice.aliases[0]" in p and "U+000A" in p for p in found), found


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("alice: {password:", '"alice\\n": {password:', "domains.t.example.mailboxes"),
        (f'"{ALICE_HASH}"', f'"{ALICE_HASH}\\n"', "domains.t.example.mailboxes.alice.password"),
        ("name: t\n", 'name: "t\\n"\n', "name"),
        ("postmaster: alice", 'postmaster: "alice\\u202e"', "domains.t.example.aliases.postmaster"),
    ],
    ids=["mailbox name", "password hash", "site name", "alias target with RLO"],
)
def test_a_trailing_control_character_is_refused(tmp_path: Path, old: str, new: str, path: str) -> None:
    assert old in MINIMAL
    found = problems(document_with(tmp_path, MINIMAL.replace(old, new)))
    assert any(f": {path}" in p for p in found), found


# ---------------------------------------------------------------------------- item 6


def test_billion_laughs_is_refused_at_the_first_alias(tmp_path: Path) -> None:
    lines = ["version: 1", "name: t", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    path = document_with(tmp_path, "\n".join(lines) + "\n")
    assert path.stat().st_size < 400
    stderr = refused(path, "alias *a: a site file does not use anchors and aliases")
    assert stderr.startswith(f"{path}:4:")


def test_a_scalar_alias_is_refused_too(tmp_path: Path) -> None:
    text = MINIMAL.replace("name: t\n", "name: &n t\n") + "    catch_all: *n\n"
    found = problems(document_with(tmp_path, text))
    assert any(p.startswith("14:16: domains.t.example.catch_all: alias *n") for p in found), found


def test_a_10_mb_one_line_list(tmp_path: Path) -> None:
    path = document_with(tmp_path, "version: 1\nname: t\nhosts: [" + ",".join(["1"] * 5_000_000) + "]\n")
    refused(path, "more than 1,000,000 values")


def test_a_file_over_16_mib(tmp_path: Path) -> None:
    path = document_with(tmp_path, MINIMAL + ("#" * 1023 + "\n") * (MAX_BYTES // 1024 + 1))
    refused(path, "larger than 16 MiB")


def test_nesting_deeper_than_any_site(tmp_path: Path) -> None:
    refused(document_with(tmp_path, "version: 1\nname: " + "[" * 50_000 + "]" * 50_000 + "\n"), "nest")


def test_many_wrong_values_give_a_bounded_list_of_problems(tmp_path: Path) -> None:
    """900,000 wrong values: the first 1,000 problems and a count, within the memory limit."""
    text = MINIMAL + "policy:\n  spf:\n    include: [" + ",".join(["1"] * 900_000) + "]\n"
    stderr = refused(document_with(tmp_path, text), "policy.spf.include[0]: expected a domain name", "more problems not shown")
    assert 1000 <= stderr.count("\n") <= 1003


def test_a_flood_of_duplicate_keys_stops_at_1000_problems(tmp_path: Path) -> None:
    stderr = refused(document_with(tmp_path, "version: 1\nname: t\n" + "a: 1\n" * 400_000), "a: duplicate key", "stopped reading after 1000 problems")
    assert stderr.count("\n") <= 1003


def test_too_many_internationalised_names(tmp_path: Path) -> None:
    text = MINIMAL + "".join(f"  例え{i}.jp: {{}}\n" for i in range(25_000))
    refused(document_with(tmp_path, text), "more than 20,000 non-ASCII names")


def test_a_big_valid_site_still_validates_within_the_limits(tmp_path: Path) -> None:
    gen_site = load_file(ROOT / "bench/gen_site.py")
    path = document_with(tmp_path, gen_site.generate(3000))
    run = validate_cli(path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "3000 domains, 30000 mailboxes" in run.stdout


@pytest.mark.parametrize("tag", ["!!python/object/apply:os.system", "!foo", "!!str", "!"])
def test_explicit_yaml_tags_are_refused_with_their_position(tmp_path: Path, tag: str) -> None:
    found = problems(document_with(tmp_path, MINIMAL.replace("name: t\n", f"name: {tag} t\n")))
    assert any(p.startswith("2:7: name: YAML tag") for p in found), found


# ---------------------------------------------------------------------------- also


def test_ansible_host_may_not_be_an_ssh_option(tmp_path: Path) -> None:
    text = MINIMAL.replace("    mx_priority: 10\n", "    mx_priority: 10\n    ansible: {host: -oProxyCommand=touch.pwned}\n")
    found = problems(document_with(tmp_path, text))
    assert any(p.startswith("9:21: hosts.mx1.ansible.host: ") and "must not start with '-'" in p for p in found), found


@pytest.mark.parametrize("value", ["true", "false", "'1'", "1.0"])
def test_version_is_the_number_1(tmp_path: Path, value: str) -> None:
    found = problems(document_with(tmp_path, MINIMAL.replace("version: 1", f"version: {value}")))
    assert any(p.startswith("1:10: version: ") for p in found), found


# ---------------------------------------------------------------------------- item 7


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    (site / "secrets").mkdir(parents=True)
    (site / "secrets/bob.hash").write_text(ALICE_HASH + "\n")
    return site


def read(site_dir: Path, rel: str) -> tuple[str | None, str]:
    value, issue = resolve(SecretRef(file=rel), site_dir, {}, ("relay", "smarthost", "password"))
    return value, (issue.message if issue else "")


def test_a_secret_file_inside_the_site_is_read(site_dir: Path) -> None:
    (site_dir / "secrets/link").symlink_to("bob.hash")  # a link that stays inside is fine
    assert read(site_dir, "secrets/bob.hash") == (ALICE_HASH, "")
    assert read(site_dir, "secrets/link") == (ALICE_HASH, "")


def test_a_symlink_out_of_the_site_is_refused(site_dir: Path, tmp_path: Path) -> None:
    vault = tmp_path / "vault-password"
    vault.write_text("the vault password\n")
    (site_dir / "secrets/smarthost").symlink_to(vault)
    (site_dir / "linked").symlink_to(tmp_path)  # a linked directory escapes too
    assert read(site_dir, "secrets/smarthost") == (None, "secret file secrets/smarthost leads outside the site directory (a symbolic link)")
    assert read(site_dir, "linked/vault-password")[1].endswith("leads outside the site directory (a symbolic link)")


def test_dev_zero_is_not_read(site_dir: Path) -> None:
    (site_dir / "zero").symlink_to("/dev/zero")
    assert "leads outside the site directory" in read(site_dir, "zero")[1]


def test_only_regular_files_are_read(site_dir: Path) -> None:
    os.mkfifo(site_dir / "fifo")
    assert read(site_dir, "fifo") == (None, "secret file fifo is not a regular file")  # and no wait for a writer
    assert read(site_dir, "secrets")[1] == "secret file secrets is not a regular file"


def test_a_secret_file_is_capped(site_dir: Path) -> None:
    (site_dir / "big").write_bytes(b"x" * (MAX_SECRET_BYTES + 1))
    assert read(site_dir, "big")[1] == "secret file big is larger than 64 KiB"


def test_a_secret_with_a_control_character_is_refused_without_showing_it(site_dir: Path) -> None:
    (site_dir / "esc").write_text("pass\x1b[8mword\n")
    value, message = read(site_dir, "esc")
    assert value is None and "control" in message and "pass" not in message


def test_a_nul_in_a_secret_path_is_a_validation_error(tmp_path: Path) -> None:
    text = MINIMAL.replace(f'{{password: "{ALICE_HASH}"}}', '{password: {file: "secrets/a\\0b"}}')
    found = problems(document_with(tmp_path, text))
    assert any(p.startswith("12:") and "domains.t.example.mailboxes.alice.password" in p and "U+0000" in p for p in found), found


def test_render_refuses_a_linked_secret_at_its_key(tmp_path: Path) -> None:
    """Through the CLI: the error names file, line and key; nothing is written."""
    site = tmp_path / "site"
    site.mkdir()
    text = (EXAMPLES / "multi-host/site.yaml").read_text()
    (site / "site.yaml").write_text(text)
    (site / "secrets").mkdir()
    (site / "secrets/bob.hash").symlink_to(EXAMPLES / "multi-host/secrets/bob.hash")
    run = subprocess.run(
        [sys.executable, "-m", "provisioner.cli", "render", str(site / "site.yaml"), "-o", str(tmp_path / "out"), "--state", str(tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        env={**os.environ, "SMARTHOST_PASSWORD": "x"},
        cwd=ROOT,
    )
    assert run.returncode == 1, run.stderr
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "file: secrets/bob.hash" in row)
    assert f"site.yaml:{line}:" in run.stderr and "domains.acme.example.mailboxes.bob.password: secret file secrets/bob.hash leads outside" in run.stderr
    assert not (tmp_path / "out").exists()
