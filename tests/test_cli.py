"""The command line as a user runs it: exit codes, determinism, atomic output, no tracebacks."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import EXAMPLES, MINIMAL

PROVISION = [sys.executable, "-m", "provisioner.cli"]


def provision(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    return subprocess.run([*PROVISION, *args], capture_output=True, text=True, env=full_env, input=stdin, check=False)


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() + oct(p.stat().st_mode) for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def site_copy(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLES / "multi-host", tmp_path / "site", ignore=shutil.ignore_patterns("state", "build"))
    return tmp_path / "site" / "site.yaml"


def test_help_lists_commands_with_examples() -> None:
    result = provision("--help")
    assert result.returncode == 0
    for command in ("validate", "render", "keys", "passwd", "schema"):
        assert command in result.stdout
    assert "Example: provision render" in provision("render", "--help").stdout


def test_validate_exit_codes(write_site) -> None:
    assert provision("validate", str(EXAMPLES / "all-in-one/site.yaml")).returncode == 0
    bad = provision("validate", str(write_site(MINIMAL.replace("name: t", "name: T"))))
    assert bad.returncode == 1
    assert ":2:7: name: 'T' is not an accepted name" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_validate_json(write_site) -> None:
    import json

    result = provision("validate", "--format", "json", str(write_site(MINIMAL.replace("name: t", "name: T"))))
    data = json.loads(result.stdout)
    assert data["valid"] is False and data["problems"][0]["line"] == 2


def test_render_twice_gives_identical_trees(site_copy: Path, tmp_path: Path) -> None:
    env = {"SMARTHOST_PASSWORD": "s3cret"}
    first = provision("render", str(site_copy), "-o", str(tmp_path / "b1"), env=env)
    assert first.returncode == 0, first.stderr
    second = provision("render", str(site_copy), "-o", str(tmp_path / "b2"), env=env)
    assert second.returncode == 0, second.stderr
    assert tree_digest(tmp_path / "b1") == tree_digest(tmp_path / "b2")
    assert "s3cret" not in first.stdout + first.stderr


def test_failed_render_leaves_previous_build(site_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "build"
    assert provision("render", str(site_copy), "-o", str(out), env={"SMARTHOST_PASSWORD": "x"}).returncode == 0
    before = tree_digest(out)
    failed = provision("render", str(site_copy), "-o", str(out), env={"SMARTHOST_PASSWORD": ""})
    assert failed.returncode == 1
    assert "SMARTHOST_PASSWORD is not set" in failed.stderr
    assert tree_digest(out) == before
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".build")]  # no staging left


def test_render_refuses_to_replace_a_foreign_directory(site_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = provision("render", str(site_copy), "-o", str(out), env={"SMARTHOST_PASSWORD": "x"})
    assert result.returncode == 1 and "refusing" in result.stderr
    assert (out / "notes.txt").read_text() == "keep me"


def test_keys_are_private_and_never_regenerated(site_copy: Path) -> None:
    assert provision("keys", str(site_copy)).returncode == 0
    state = site_copy.parent / "state"
    keys = sorted((state / "dkim").rglob("*.pem"))
    assert len(keys) == 3 * 2 * 2  # 3 domains x active+standby x rsa+ed25519
    assert all(k.stat().st_mode & 0o777 == 0o600 for k in keys)
    before = {k: k.read_bytes() for k in keys}
    again = provision("keys", str(site_copy))
    assert "all keys present" in again.stdout
    assert {k: k.read_bytes() for k in keys} == before


def test_schema_is_the_committed_one() -> None:
    result = provision("schema")
    assert result.returncode == 0
    committed = (EXAMPLES.parent / "docs/site.schema.json").read_text()
    assert result.stdout == committed, "run: provision schema > docs/site.schema.json"


def test_examples_validate_against_the_schema_modeline() -> None:
    for site in EXAMPLES.glob("*/site.yaml"):
        first = site.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema=")
        assert (site.parent / first.split("=", 1)[1]).resolve().exists()


def test_passwd_hash_is_verified_by_dovecot() -> None:
    result = provision("passwd", stdin="correct horse\n")
    assert result.returncode == 0
    hashed = yaml.safe_load(result.stdout)  # printed quoted for YAML
    assert result.stdout == f"'{hashed}'\n"
    assert hashed.startswith("{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$")
    ok = subprocess.run(["doveadm", "pw", "-t", hashed, "-p", "correct horse"], capture_output=True, text=True)
    assert "(verified)" in ok.stdout + ok.stderr
    wrong = subprocess.run(["doveadm", "pw", "-t", hashed, "-p", "wrong horse"], capture_output=True, text=True)
    assert wrong.returncode != 0


def test_passwd_hash_is_accepted_in_a_site(write_site) -> None:
    """What passwd prints is pasted as it is, after `password: ` in block or flow style."""
    printed = provision("passwd", stdin="pw\n").stdout.strip()
    quoted = 'password: "' + MINIMAL.split('password: "')[1].split('"')[0] + '"'
    for style in (f"password: {printed}", f"password: {printed}, quota: 1G"):
        site = write_site(MINIMAL.replace(quoted, style))
        done = provision("validate", str(site))
        assert done.returncode == 0, done.stderr
    raw = provision("passwd", "--raw", stdin="pw\n").stdout
    assert raw.startswith("{ARGON2ID}$argon2id$") and raw.endswith("\n") and "'" not in raw


def test_example_passwords_match_their_hashes() -> None:
    """The documented example passwords really are what the example hashes hold."""
    from tests.conftest import ALICE_HASH, ALICE_PASSWORD

    ok = subprocess.run(["doveadm", "pw", "-t", ALICE_HASH, "-p", ALICE_PASSWORD], capture_output=True, text=True)
    assert "(verified)" in ok.stdout + ok.stderr


def test_keys_rotate_from_the_command_line(site_copy: Path) -> None:
    assert provision("keys", str(site_copy)).returncode == 0
    rotated = provision("keys", str(site_copy), "--rotate", "例え.jp", "--force")  # the standby is minutes old
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.startswith("xn--r8jz45g.jp:\n  signing now with ")
    assert "retired" in (site_copy.parent / "state/dkim.yaml").read_text()
    unknown = provision("keys", str(site_copy), "--rotate", "other.example")
    assert unknown.returncode == 1 and "not a domain of site acme" in unknown.stderr


def test_rerender_reuses_unchanged_files_and_rewrites_changed_ones(site_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "build"
    env = {"SMARTHOST_PASSWORD": "x"}
    assert provision("render", str(site_copy), "-o", str(out), env=env).returncode == 0
    main_cf = out / "mx1/etc/postfix/main.cf"
    transport = out / "mx1/etc/postfix/transport"
    virtual = out / "mx1/etc/postfix/virtual"
    inode = main_cf.stat().st_ino
    expected_virtual = virtual.read_text()
    virtual.write_text("edited by hand\n")  # unchanged by the site edit, but must not survive a render
    site_copy.write_text(site_copy.read_text().replace("partner.example:", "partner2.example:"))
    assert provision("render", str(site_copy), "-o", str(out), env=env).returncode == 0
    assert main_cf.stat().st_ino == inode  # unchanged: linked, not rewritten
    assert "partner2.example\tsmtp:[mx.partner.example]:25" in transport.read_text()
    assert virtual.read_text() == expected_virtual


def test_vault_encrypted_keys_end_to_end(site_copy: Path, tmp_path: Path) -> None:
    """GitOps: keys committed encrypted; render needs the password and ships plaintext keys to hosts."""
    password = tmp_path / "vault-pass"
    password.write_text("correct horse battery staple\n")
    env = {"SMARTHOST_PASSWORD": "x"}
    assert provision("keys", str(site_copy), "--vault-password-file", str(password)).returncode == 0
    keys = sorted((site_copy.parent / "state/dkim").rglob("*.pem"))
    assert keys and all(k.read_bytes().startswith(b"$ANSIBLE_VAULT;1.1;AES256") for k in keys)
    assert all(k.stat().st_mode & 0o777 == 0o600 for k in keys)
    without = provision("render", str(site_copy), "-o", str(tmp_path / "b0"), env=env)
    assert without.returncode == 1 and "encrypted with ansible-vault" in without.stderr
    with_env = provision("render", str(site_copy), "-o", str(tmp_path / "b1"), env={**env, "ANSIBLE_VAULT_PASSWORD_FILE": str(password)})
    assert with_env.returncode == 0, with_env.stderr
    shipped = next((tmp_path / "b1/mx1/etc/opendkim/keys").iterdir())
    assert shipped.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert "PRIVATE KEY" not in with_env.stdout + with_env.stderr


def test_dns_command_formats(site_copy: Path, tmp_path: Path) -> None:
    import json

    zone = provision("dns", str(site_copy), "--format", "zone", "--standalone")
    assert zone.returncode == 0, zone.stderr
    assert "acme.example. 3600 IN MX 10 mx1.acme.example." in zone.stdout and "IN SOA" in zone.stdout
    data = json.loads(provision("dns", str(site_copy), "--format", "json").stdout)
    assert {r["type"] for r in data["records"]} >= {"MX", "TXT", "A", "AAAA", "PTR", "SRV", "CNAME"}
    assert "xn--r8jz45g.jp" in provision("dns", str(site_copy), "--format", "octodns").stdout
    sheet = provision("dns", str(site_copy), "--format", "sheet", "--lang", "ja")
    assert sheet.returncode == 0 and '<html lang="ja"' in sheet.stdout and "例え.jp" in sheet.stdout
    pdf = tmp_path / "sheet.pdf"
    assert provision("dns", str(site_copy), "--format", "pdf", "-o", str(pdf)).returncode == 0
    assert pdf.read_bytes().startswith(b"%PDF")
    bad = provision("dns", str(site_copy), "--format", "bind")
    assert bad.returncode == 64 and "'bind' is not one of 'zone', 'json', 'octodns', 'sheet', 'pdf'" in bad.stderr
    assert provision("dns", str(site_copy), "--format", "pdf").returncode == 1  # a PDF needs -o


# --- choices: --format and --lang are checked by click (issue 17 item 5) ---

CHOICES = {
    ("validate", "--format"): ("text", "json"),
    ("render", "--format"): ("text", "json"),
    ("dns", "--format"): ("zone", "json", "octodns", "sheet", "pdf"),
    ("dns", "--lang"): ("en", "ja"),
    ("check", "--format"): ("table", "json"),
    ("plan", "--format"): ("text", "markdown", "json"),
    ("apply", "--format"): ("text", "json"),
    ("inspect", "--format"): ("text", "json"),
    ("inspect", "--lang"): ("en", "ja"),
}


@pytest.mark.parametrize(("command", "option"), sorted(CHOICES))
def test_a_choice_outside_the_list_is_a_usage_error_and_help_lists_the_choices(command: str, option: str, tmp_path: Path) -> None:
    """Before: six hand-written checks, exit 1, and --help said nothing of the choices. Now the
    option's type is an Enum: a wrong value is a usage error (64) before anything is read, and
    --help shows <a|b|c>."""
    choices = CHOICES[(command, option)]
    site = tmp_path / "missing.yaml"  # never read: the option is refused first
    bad = provision(command, "-" if command == "inspect" else str(site), option, "bogus")
    assert bad.returncode == 64, bad.stderr
    assert "'bogus' is not one of " + ", ".join(f"'{c}'" for c in choices) in bad.stderr
    assert f"<{'|'.join(choices)}>" in provision(command, "--help").stdout


def test_the_cli_dns_formats_are_the_dns_modules() -> None:
    from provisioner.cli import DnsFormat
    from provisioner.dns import FORMATS

    assert tuple(DnsFormat) == FORMATS


# --- exit codes, help, version, completion (issue 12 items 4 and 12) ---

COMMANDS = ("validate", "keys", "render", "dns", "dns push", "check", "plan", "apply", "inspect", "passwd", "schema")


def _words(text: str) -> str:
    return " ".join(text.split())


def test_every_command_is_covered() -> None:
    from provisioner.cli import EXIT, app

    names = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    assert names == set(COMMANDS) == set(EXIT)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_usage_error_exits_64_for_every_command(command: str, tmp_path: Path) -> None:
    """A mistyped option, a bad value, a missing argument: 64, never click's 2 (plan's "changes",
    inspect's "not authentic") and never 1 (a real error)."""
    typo = provision(command, "--no-such-option", str(tmp_path / "site.yaml"))
    assert typo.returncode == 64, typo.stderr
    assert "No such option: --no-such-option" in typo.stderr and "Traceback" not in typo.stderr
    assert typo.stdout == ""
    takes_site = command not in ("passwd", "schema", "inspect")
    if takes_site:
        missing = provision(command)
        assert missing.returncode == 64 and "Missing argument" in missing.stderr, missing.stderr
    if command in ("check", "inspect"):
        bad = provision(command, "--timeout", "soon", "x")
        assert bad.returncode == 64 and "Invalid value for '--timeout'" in bad.stderr, bad.stderr


def test_usage_errors_at_the_top_level_exit_64() -> None:
    for args in (("nosuchcommand",), ("--no-such-option",), ()):
        done = provision(*args)
        assert done.returncode == 64, (args, done.stderr)
    assert provision("--help").returncode == 0
    assert provision("plan", "--help").returncode == 0


def test_plan_changes_still_exit_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The CLI maps plan's result to its own code, unchanged by the usage-error code (a fake plan:
    Ansible check mode needs a host; tests/apply runs the real one)."""
    import provisioner.apply.flow as flow
    import provisioner.cli as cli
    from provisioner.apply.plan import FileChange, HostPlan, PlanResult

    for changes, code in (((FileChange("etc/postfix/main.cf", "content"),), 2), ((), 0)):
        result = PlanResult(hosts=(HostPlan("mail", files=changes),))
        monkeypatch.setattr(flow, "build", lambda *args, **kwargs: None)
        monkeypatch.setattr(flow, "plan", lambda *args, result=result: result)
        monkeypatch.setattr(sys, "argv", ["provision", "plan", str(tmp_path / "site.yaml"), "--format", "json"])
        with pytest.raises(SystemExit) as exited:
            cli.main()
        assert exited.value.code == code
        capsys.readouterr()


def test_inspect_not_authentic_still_exits_2(tmp_path: Path) -> None:
    """A message whose Authentication-Results from a trusted server say DMARC failed: 2."""
    message = tmp_path / "spoof.eml"
    message.write_bytes(
        b"Authentication-Results: mx.receiver.test; dmarc=fail header.from=bank.test; spf=fail smtp.mailfrom=evil.test; dkim=none\r\n"
        b"Received: from mail.evil.test (mail.evil.test [198.51.100.7]) by mx.receiver.test; Mon, 2 Nov 2026 10:00:00 +0000\r\n"
        b"From: Bank <alerts@bank.test>\r\nTo: you@receiver.test\r\nSubject: urgent\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n"
        b"Message-ID: <1@evil.test>\r\n\r\nhello\r\n"
    )
    done = provision("inspect", str(message), "--trust", "mx.receiver.test")
    assert done.returncode == 2, done.stdout + done.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_every_help_shows_an_example_and_the_exit_codes_of_the_readme(command: str) -> None:
    from provisioner.cli import COMMON_EXIT, EXIT

    shown = _words(provision(command, "--help").stdout)
    assert f"Example: provision {command}" in shown
    assert _words(f"Exit codes: {EXIT[command]}; {COMMON_EXIT}.") in shown
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith(f"| `provision {command}"))
    assert row.rstrip(" |").rsplit(" | ", 1)[1] == EXIT[command]
    assert "64 on a usage error" in readme


def test_no_example_applies_to_this_machine_unasked() -> None:
    """No example in any --help runs apply with --yes, or against inventories/local (this machine)."""
    for args in [("--help",), *((c, "--help") for c in COMMANDS)]:
        for line in provision(*args).stdout.splitlines():
            if "provision apply" in line:
                assert "--yes" not in line and "inventories/local" not in line, line


def test_version() -> None:
    from importlib.metadata import version

    done = provision("--version")
    assert done.returncode == 0
    assert done.stdout == f"provision {version('provisioner')}\n"


def test_shell_completion_works() -> None:
    """The installed `provision` script: its bash completion script, and the completions it gives."""
    installed = str(Path(sys.executable).parent / "provision")
    script = subprocess.run([installed, "--show-completion", "bash"], capture_output=True, text=True, env={**os.environ, "SHELL": "/bin/bash"})
    assert script.returncode == 0 and "_PROVISION_COMPLETE=complete_bash" in script.stdout
    assert "complete -o default -F _provision_completion provision" in script.stdout
    completions = subprocess.run(
        [installed],
        env={**os.environ, "_PROVISION_COMPLETE": "complete_bash", "COMP_WORDS": "provision pl", "COMP_CWORD": "1"},
        capture_output=True,
        text=True,
    )
    assert completions.stdout.split() == ["plan"]
    options = subprocess.run(
        [installed],
        env={**os.environ, "_PROVISION_COMPLETE": "complete_bash", "COMP_WORDS": "provision check --str", "COMP_CWORD": "2"},
        capture_output=True,
        text=True,
    )
    assert options.stdout.split() == ["--strict"]


def test_counts_are_singular_for_one(write_site) -> None:
    done = provision("validate", str(write_site(MINIMAL)))
    assert done.returncode == 0
    assert "valid (1 host, 1 domain, 1 mailbox)" in done.stdout
    two = provision("validate", str(EXAMPLES / "multi-host/site.yaml"), env={"SMARTHOST_PASSWORD": "x"})
    assert re.search(r"valid \(\d+ hosts, \d+ domains, \d+ mailboxes\)", two.stdout), two.stdout


UNQUOTED = {
    "ARGON2ID": "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$4UpCNAmRJ40A4SZ+1IFVnw$0VMvaY6Hlpx3bUYZQxqT3lc27nod6JEAjo263ZDUq/A",
    "BLF-CRYPT": "{BLF-CRYPT}$2y$05$" + "a" * 53,
    "SHA512-CRYPT": "{SHA512-CRYPT}$6$saltsalt$" + "b" * 86,
}


@pytest.mark.parametrize("scheme", sorted(UNQUOTED))
@pytest.mark.parametrize("style", ["block", "flow"])
def test_an_unquoted_hash_gets_a_hint_about_quoting(scheme: str, style: str, write_site) -> None:
    hashed = UNQUOTED[scheme]
    entry = f"alice:\n        password: {hashed}" if style == "block" else f"alice: {{password: {hashed}}}"
    text = re.sub(r"alice: \{password: \"[^\"]+\"\}", lambda _: entry, MINIMAL)
    done = provision("validate", str(write_site(text)))
    assert done.returncode == 1
    assert re.search(r"site\.yaml:1[23]:\d+: YAML syntax error: .*\(hint: a password hash must be quoted: YAML reads \{" + re.escape(scheme) + r"\} as a mapping", done.stderr), done.stderr
    assert "Traceback" not in done.stderr


def test_commands_run_from_the_site_directory_with_a_bare_file_name(tmp_path: Path) -> None:
    """`provision keys site.yaml` in the site's own directory: the state directory is relative
    and its parent is '' (making it was an internal error, FileNotFoundError: '')."""
    shutil.copy(EXAMPLES / "all-in-one/site.yaml", tmp_path / "site.yaml")
    for args in (("keys", "site.yaml"), ("render", "site.yaml", "-o", "out"), ("dns", "site.yaml")):
        done = subprocess.run([*PROVISION, *args], cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"})
        assert done.returncode == 0, (args, done.stderr)
    assert (tmp_path / "state").is_dir() and (tmp_path / "out" / "manifest.json").is_file()
