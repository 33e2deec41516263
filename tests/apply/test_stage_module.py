"""roles/mailhost/library/mailhost_stage.py, the role's Ansible module, against a temporary tree.

Its functions are called directly, and the module is also run the way Ansible runs it (a JSON
file of ANSIBLE_MODULE_ARGS, `_ansible_check_mode`, `_ansible_diff`). Every live path is inside
tmp_path: a bundle's member names are the live paths without their leading slash.
"""

from __future__ import annotations

import grp
import hashlib
import io
import json
import os
import pwd
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.loaders import role_module, run_role_module

REPO = Path(__file__).resolve().parents[2]
MODULE = REPO / "roles/mailhost/library/mailhost_stage.py"
USER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name
SECRET = b"[smtp.provider.example]:587\tacme:a-real-password\n"


stage_module = role_module("mailhost_stage")


def entry(path: Path, content: bytes, mode: str = "0644", key: bytes | None = None) -> dict[str, Any]:
    import hmac

    digest = {"hmac_sha256": hmac.new(key, content, hashlib.sha256).hexdigest()} if key else {"sha256": hashlib.sha256(content).hexdigest()}
    return {"path": str(path), "mode": mode, "owner": USER, "group": GROUP, **digest}


def bundle(path: Path, files: dict[Path, tuple[bytes, int]]) -> Path:
    """A tar like provisioner.apply.write_bundles makes: member name = live path without '/'."""
    with tarfile.open(path, "w") as tar:
        for live, (content, mode) in sorted(files.items()):
            info = tarfile.TarInfo(str(live).lstrip("/"))
            info.size, info.mode, info.uname, info.gname = len(content), mode, USER, GROUP
            tar.addfile(info, io.BytesIO(content))
    return path


def run_as_ansible(tmp_path: Path, args: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Run the module file as Ansible does with an args file; its one JSON result."""
    code, result, _ = run_role_module("mailhost_stage", args, tmp_path / "args.json")
    return code, result


@pytest.fixture
def live(tmp_path: Path) -> Path:
    root = tmp_path / "live"
    (root / "etc/postfix").mkdir(parents=True)
    return root


# ------------------------------------------------------------------------------ inspect


def test_inspect_names_each_difference_and_never_a_digest(live: Path) -> None:
    key = os.urandom(32)
    main_cf, master_cf, missing, sasl = (live / "etc/postfix" / n for n in ("main.cf", "master.cf", "virtual", "sasl_passwd"))
    main_cf.write_bytes(b"old\n")
    master_cf.write_bytes(b"same\n")
    master_cf.chmod(0o600)
    sasl.write_bytes(SECRET)
    sasl.chmod(0o600)
    files = [entry(main_cf, b"new\n"), entry(master_cf, b"same\n"), entry(missing, b"x\n"), entry(sasl, SECRET, "0600", key)]
    args = {"files": files, "tables": [], "reload_on": {"postfix": [str(live / "etc/postfix/")], "dovecot": ["/etc/dovecot/"]}, "digest_key": key.hex()}
    report = stage_module.inspect(args)
    assert report["files"] == [{"path": str(main_cf), "why": "content"}, {"path": str(master_cf), "why": "mode"}, {"path": str(missing), "why": "missing"}]
    assert report["reload"] == ["postfix"]
    assert not [word for word in json.dumps(report).split('"') if len(word) == 64]  # no digest of anything
    # A secret without this host's key is never taken as unchanged; with another host's, neither.
    assert {"path": str(sasl), "why": "content"} in stage_module.inspect({**args, "digest_key": None})["files"]
    assert {"path": str(sasl), "why": "content"} in stage_module.inspect({**args, "digest_key": os.urandom(32).hex()})["files"]


def unchanged_facts(path: Path) -> tuple[bytes, int, int, int, int, int]:
    """What a read-only look must leave as it was: content, inode, mode, owner, group, mtime."""
    st = path.stat()
    return path.read_bytes(), st.st_ino, st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns


def test_inspect_through_ansible_is_read_only_hides_the_key_and_diffs_without_content(live: Path, tmp_path: Path) -> None:
    key = os.urandom(32)
    sasl = live / "etc/postfix/sasl_passwd"
    sasl.write_bytes(b"old secret\n")
    sasl.chmod(0o600)
    before = unchanged_facts(sasl)
    args = {"action": "inspect", "files": [entry(sasl, SECRET, "0600", key)], "digest_key": key.hex(), "_ansible_check_mode": True, "_ansible_diff": True}
    code, result = run_as_ansible(tmp_path, args)
    assert code == 0 and result["changed"] is False
    report = {"provisioner": "inspect", "files": [{"path": str(sasl), "why": "content"}], "tables": [], "reload": [], "restart": [], "postconf_changed": []}
    assert result["provisioner_report"] == report
    assert result["restart"] == [] and result["postconf_changed"] == []
    assert result["diff"] == [
        {"before_header": str(sasl), "after_header": str(sasl), "before": f"{sasl}: content\n", "after": f"{sasl}: as the build has it\n"}
    ]
    text = json.dumps(result)
    assert key.hex() not in text and "old secret" not in text and "a-real-password" not in text
    assert unchanged_facts(sasl) == before  # reading may move atime (relatime); nothing else


# --------------------------------------------------------------------- stage and install


def test_stage_then_install_puts_only_what_differs_live_atomically_with_owner_and_mode(live: Path, tmp_path: Path) -> None:
    main_cf, sasl = live / "etc/postfix/main.cf", live / "etc/postfix/sasl_passwd"
    new_dir_file = live / "etc/opendkim/keys/a.private"
    main_cf.write_bytes(b"same\n")
    main_cf.chmod(0o644)
    os.utime(main_cf, ns=(0, 0))
    staged = tmp_path / "staged"
    tar = bundle(tmp_path / "bundle.tar", {main_cf: (b"same\n", 0o644), sasl: (SECRET, 0o600), new_dir_file: (b"KEY\n", 0o600)})
    assert stage_module.stage(str(tar), str(staged)) == {"provisioner": "stage", "files": 3}
    assert (staged / str(sasl).lstrip("/")).stat().st_mode & 0o777 == 0o600
    reload_on = {"postfix": [str(live / "etc/postfix/")], "opendkim": [str(live / "etc/opendkim/")]}

    planned = stage_module.install(str(staged), {"reload_on": reload_on}, check=True)
    assert planned["changed"] == [str(new_dir_file), str(sasl)] and not sasl.exists() and not new_dir_file.exists()  # check mode writes nothing

    report, changed, diff = stage_module.run({"action": "install", "staged": str(staged), "reload_on": reload_on})
    assert changed and report == {
        "provisioner": "install",
        "changed": [str(new_dir_file), str(sasl)],
        "reload": ["opendkim", "postfix"],
        "restart": [],
        "postconf_changed": [],
    }
    assert [d["before"] for d in diff] == [f"{new_dir_file}: missing\n", f"{sasl}: missing\n"]
    assert sasl.read_bytes() == SECRET and sasl.stat().st_mode & 0o7777 == 0o600
    assert new_dir_file.parent.stat().st_mode & 0o7777 == 0o755
    assert main_cf.stat().st_mtime_ns == 0  # an equal file is left alone
    assert not [p for p in (live / "etc/postfix").iterdir() if ".provisioner-" in p.name]  # no temporary left
    again = stage_module.run({"action": "install", "staged": str(staged), "reload_on": reload_on})
    assert again[1] is False and again[0]["changed"] == []  # `changed` is truthful: nothing the second time


@pytest.mark.parametrize(
    "name, kind",
    [("../outside", tarfile.REGTYPE), ("/etc/passwd", tarfile.REGTYPE), ("etc/link", tarfile.SYMTYPE), ("etc/dir", tarfile.DIRTYPE)],
)
def test_stage_refuses_a_member_that_is_not_a_relative_regular_file(tmp_path: Path, name: str, kind: bytes) -> None:
    tar_path = tmp_path / "bundle.tar"
    with tarfile.open(tar_path, "w") as tar:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = "/etc/shadow" if kind == tarfile.SYMTYPE else ""
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(stage_module.StageError, match="not a relative regular file"):
        stage_module.stage(str(tar_path), str(tmp_path / "staged"))
    assert not (tmp_path / "outside").exists()
    code, result = run_as_ansible(tmp_path, {"action": "stage", "bundle": str(tar_path), "staged": str(tmp_path / "staged2")})
    assert code == 1 and result["failed"] is True and "not a relative regular file" in result["msg"]
    assert "Traceback" not in result["msg"]


def test_check_mode_through_ansible_stages_nothing(tmp_path: Path, live: Path) -> None:
    tar = bundle(tmp_path / "bundle.tar", {live / "etc/postfix/main.cf": (b"x\n", 0o644)})
    code, result = run_as_ansible(tmp_path, {"action": "stage", "bundle": str(tar), "staged": str(tmp_path / "staged"), "_ansible_check_mode": True})
    assert code == 0 and result["changed"] is True and result["provisioner_report"] == {"provisioner": "stage", "files": 1}
    assert not (tmp_path / "staged").exists()


def test_view_points_every_shipped_path_into_the_copy(tmp_path: Path, live: Path) -> None:
    conf, key_file = live / "etc/opendkim.conf", live / "etc/opendkim/keys/a.private"
    staged, view = tmp_path / "staged", tmp_path / "view"
    stage_module.stage(str(bundle(tmp_path / "b.tar", {conf: (f"KeyFile {key_file}\n".encode(), 0o644), key_file: (b"K\n", 0o600)})), str(staged))
    stage_module.view(str(staged), str(view))
    assert (view / str(conf).lstrip("/")).read_text() == f"KeyFile {view}{key_file}\n"
    assert (staged / str(conf).lstrip("/")).read_text() == f"KeyFile {key_file}\n"


@pytest.mark.skipif(not shutil.which("postmap"), reason="postmap (Postfix) is not installed; tests/run.sh installs it")
def test_compile_builds_the_table_in_the_staging_tree_and_not_in_check_mode(tmp_path: Path, live: Path) -> None:
    staged = tmp_path / "staged"
    table = live / "etc/postfix/virtual"
    source = staged / str(table).lstrip("/")
    (staged / "etc/postfix").mkdir(parents=True)
    (staged / "etc/postfix/main.cf").write_text("default_database_type = lmdb\nalias_database =\n")
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text("a@example.org b@example.org\n")
    assert stage_module.compile_tables(str(staged), {"tables": [str(table)]}, check=True)["tables"] == [str(table)]
    assert not Path(f"{source}.lmdb").exists()
    report, changed, _ = stage_module.run({"action": "compile", "staged": str(staged), "tables": [str(table)]})
    assert changed and report == {"provisioner": "compile", "tables": [str(table)]}
    assert Path(f"{source}.lmdb").exists()


def test_an_action_without_its_paths_is_refused_by_name(tmp_path: Path) -> None:
    code, result = run_as_ansible(tmp_path, {"action": "install"})
    assert code == 1 and result["msg"] == "install: action install needs staged"


def test_ansible_runs_it_with_the_hosts_interpreter() -> None:
    # Ansible replaces a `#!/usr/bin/python` line by ansible_python_interpreter; `python3` would
    # look up ansible_python3_interpreter and, with a local connection into a chroot, run the
    # module on the controller instead of the host.
    assert MODULE.read_text().splitlines()[0] == "#!/usr/bin/python"


# ---------------------------------------------------------------------------- prepare


def test_prepare_makes_directories_and_files_with_their_mode_and_corrects_drift(tmp_path: Path) -> None:
    store, log, sock = tmp_path / "var/vmail", tmp_path / "var/log/dovecot-lda.log", tmp_path / "spool/opendkim"
    paths = [
        {"path": str(store), "kind": "directory", "owner": USER, "group": GROUP, "mode": "0750"},
        {"path": str(log), "kind": "file", "owner": USER, "group": GROUP, "mode": "0640"},
        {"path": str(sock), "kind": "directory", "owner": USER, "group": GROUP, "mode": "02750"},
    ]
    planned = stage_module.prepare(paths, check=True)
    assert [c["why"] for c in planned["changed"]] == ["missing"] * 3 and not store.exists()
    made = stage_module.prepare(paths)
    assert [c["path"] for c in made["changed"]] == [str(store), str(log), str(sock)]
    assert (oct(store.stat().st_mode & 0o7777), oct(log.stat().st_mode & 0o7777), oct(sock.stat().st_mode & 0o7777)) == ("0o750", "0o640", "0o2750")
    assert log.is_file() and log.read_bytes() == b""
    assert stage_module.prepare(paths)["changed"] == []  # a re-apply changes nothing
    log.write_text("a delivery\n")
    store.chmod(0o755)
    again = stage_module.prepare(paths)
    assert again["changed"] == [{"path": str(store), "why": "mode"}] and log.read_text() == "a delivery\n"  # a log is never emptied


def test_prepare_refuses_a_link_or_the_wrong_kind_and_an_owner_not_there(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    link = tmp_path / "store"
    link.symlink_to(target)
    with pytest.raises(stage_module.StageError, match="is not a directory"):
        stage_module.prepare([{"path": str(link), "kind": "directory", "owner": USER, "group": GROUP, "mode": "0700"}])
    target.chmod(0o755)
    with pytest.raises(stage_module.StageError):
        stage_module.prepare([{"path": str(link), "kind": "directory", "owner": USER, "group": GROUP, "mode": "0700"}])
    assert oct(target.stat().st_mode & 0o777) == "0o755"  # the link was never followed
    a_file = tmp_path / "state"
    a_file.write_text("x")
    with pytest.raises(stage_module.StageError, match="is not a directory"):
        stage_module.prepare([{"path": str(a_file), "kind": "directory", "owner": USER, "group": GROUP, "mode": "0700"}])
    nobody = {"path": str(tmp_path / "vmail"), "kind": "directory", "owner": "no-such-user-here", "group": GROUP, "mode": "0750"}
    assert stage_module.prepare([nobody], check=True)["changed"] == [{"path": nobody["path"], "why": "missing"}]
    with pytest.raises(stage_module.StageError, match="no user no-such-user-here"):
        stage_module.prepare([nobody])
    assert not (tmp_path / "vmail").exists()


# ------------------------------------------------------------------------------ probe


def probe_args(live: Path, store: Path, script: Path, **extra: Any) -> dict[str, Any]:
    return {
        "files": [entry(live / "etc/postfix/main.cf", b"same\n")],
        "tables": [],
        "reload_on": {"postfix": [str(live / "etc/postfix/")]},
        "paths": [{"path": str(store), "kind": "directory", "owner": USER, "group": GROUP, "mode": "0750"}],
        "sieve": [str(script)],
        "packages": ["dpkg"],
        **extra,
    }


def test_probe_reads_the_release_and_the_missing_packages_and_calls_a_host_as_built_clean(live: Path, tmp_path: Path) -> None:
    (live / "etc/postfix/main.cf").write_bytes(b"same\n")
    (live / "etc/postfix/main.cf").chmod(0o644)
    store, script = tmp_path / "vmail", tmp_path / "default.sieve"
    store.mkdir(mode=0o750)
    store.chmod(0o750)
    script.write_text("keep;\n")
    (tmp_path / "default.svbin").write_bytes(b"compiled")
    vmail = {"user": "daemon", "uid": 1, "home": "/usr/sbin"}  # as Debian has it: group daemon, nologin
    report = stage_module.probe(probe_args(live, store, script, vmail=vmail))
    release = stage_module.os_release()
    assert report["release"]["id"] == release["ID"] and report["release"]["version"] == release.get("VERSION_ID", "unknown")
    assert report["release"]["debian_version"] == Path("/etc/debian_version").read_text().strip()
    assert report["init"] == ("systemd" if Path("/run/systemd/system").is_dir() else "other")
    assert (report["missing_packages"], report["pending"], report["clean"]) == ([], [], True), report
    missing = stage_module.probe(probe_args(live, store, script, packages=["dpkg", "no-such-package-here"]))
    assert (missing["missing_packages"], missing["pending"], missing["clean"]) == (["no-such-package-here"], ["packages"], False)


@pytest.mark.parametrize("drift", ["file", "directory", "sieve missing", "sieve older", "vmail user", "vmail absent"])
def test_probe_names_each_kind_of_drift_and_changes_nothing(live: Path, tmp_path: Path, drift: str) -> None:
    main_cf = live / "etc/postfix/main.cf"
    main_cf.write_bytes(b"same\n")
    main_cf.chmod(0o644)
    store, script, svbin = tmp_path / "vmail", tmp_path / "default.sieve", tmp_path / "default.svbin"
    store.mkdir(mode=0o750)
    store.chmod(0o750)
    script.write_text("keep;\n")
    svbin.write_bytes(b"compiled")
    vmail = {"user": "daemon", "uid": 1, "home": "/usr/sbin"}
    if drift == "file":
        main_cf.write_bytes(b"edited by hand\n")
    elif drift == "directory":
        store.chmod(0o755)
    elif drift == "sieve missing":
        svbin.unlink()
    elif drift == "sieve older":
        os.utime(svbin, (1, 1))
    elif drift == "vmail user":
        vmail["home"] = "/var/vmail"
    else:
        vmail["user"] = "no-such-user-here"
    before = {p: unchanged_facts(p) for p in (main_cf, script) if p.exists()}
    report = stage_module.probe(probe_args(live, store, script, vmail=vmail))
    expected = {"file": "files", "directory": "directories", "sieve missing": "sieve", "sieve older": "sieve"}.get(drift, "vmail user")
    assert (report["pending"], report["clean"]) == ([expected], False), report
    assert {p: unchanged_facts(p) for p in before} == before
    assert oct(store.stat().st_mode & 0o7777) == ("0o755" if drift == "directory" else "0o750")
    assert (svbin.exists(), svbin.exists() and svbin.stat().st_mtime == 1) == (drift != "sieve missing", drift == "sieve older")


def test_os_release_reads_quoted_values_as_a_shell_would(tmp_path: Path) -> None:
    release = tmp_path / "os-release"
    release.write_text('PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nID=debian\nVERSION_ID="13"\nVERSION_CODENAME=trixie\n# a comment\nBROKEN="unclosed\n')
    assert stage_module.os_release(str(release)) == {
        "PRETTY_NAME": "Debian GNU/Linux 13 (trixie)",
        "ID": "debian",
        "VERSION_ID": "13",
        "VERSION_CODENAME": "trixie",
    }
    assert stage_module.os_release(str(tmp_path / "none")) == {}
