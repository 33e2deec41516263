"""DKIM keys in the state directory: generated once, never regenerated, selectors never reused.

Layout of STATE (default `state/` beside the site file):

    dkim.yaml                       which selector generation is active, standby, retired
    dkim/<a-label-domain>/<selector>.pem   private keys, PKCS#8 PEM, mode 0600
    secret-digest.key               the key of the manifest's digests of secret files, 0600

Every directory provisioner makes in STATE is 0700, whatever the umask (make_dirs).

With a vault password (`--vault-password-file FILE` or ANSIBLE_VAULT_PASSWORD_FILE), new private
keys are written as ansible-vault files (`$ANSIBLE_VAULT;1.1;AES256`, made by ansible-core's own
VaultLib, same names, mode 0600), so the state directory can live in Git; `ansible-vault view`
opens them. Read keys through `KeyState.read_private`, which accepts plaintext and vault files
alike. Existing keys are never rewritten: a plaintext key stays plaintext until it is rotated out.

Each domain has generations. A generation is named like `s202611a` (year, month, a letter
that is never reused for the domain) and holds one key per algorithm of `policy.dkim.keys`:
the RSA key's selector is the generation name, the ed25519 key's is `<name>-ed`.
From day one a domain has an active generation (signing) and a standby one (published,
not signing), so a rotation needs no wait for DNS.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import string
import subprocess
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import yaml_rs

from provisioner.errors import ProvisionError
from provisioner.files import atomic_write
from provisioner.site.model import Site
from provisioner.site.types import DkimKeyType

if TYPE_CHECKING:
    from ansible.parsing.vault import VaultLib

STATE_FILE = "dkim.yaml"
STATE_DIR_MODE = 0o700  # every directory made in STATE: it holds private keys
# A retired selector stays published this long: mail signed just before a rotation may sit in
# queues for up to 5 days (maximal_queue_lifetime) and be verified again when forwarded.
RETIRED_DAYS = 14
# Then it is published revoked (empty p=, RFC 6376 §3.6.1) so verifiers see "key revoked"
# rather than "no key", and finally no longer published. The entry stays in dkim.yaml so the
# selector name is never used again.
WITHDRAWN_DAYS = 30
# A standby is rotated to only this many days after it was made: its record must be in DNS and
# in verifiers' caches before mail is signed with it. Publishing by hand can take a day, and a
# resolver may cache the selector's absence for the zone's negative TTL (RFC 2308 §5, SOA
# minimum: a day at some providers). Dates have no time, so 2 days is at least one whole day.
PUBLISH_GRACE_DAYS = 2
VAULT_HEADER = b"$ANSIBLE_VAULT;"
VAULT_PASSWORD_ENV = "ANSIBLE_VAULT_PASSWORD_FILE"


class KeyStatus(StrEnum):
    """Where a DKIM key generation is in its life (not apply's Status of a host)."""

    ACTIVE = "active"
    STANDBY = "standby"
    RETIRED = "retired"  # still published, no longer signing
    WITHDRAWN = "withdrawn"  # published as revoked (p=) for a while, then gone


@dataclass
class Generation:
    name: str
    status: KeyStatus
    since: str  # ISO date the status began
    algorithms: list[str] = field(default_factory=list)

    def selector(self, algorithm: str) -> str:
        return self.name + ("-ed" if algorithm == DkimKeyType.ED25519.value else "")

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "status": self.status.value, "since": self.since, "algorithms": sorted(self.algorithms)}


@dataclass(frozen=True)
class DkimKey:
    domain: str
    selector: str
    algorithm: str
    status: KeyStatus
    path: Path


@dataclass
class KeyState:
    state_dir: Path
    domains: dict[str, list[Generation]] = field(default_factory=dict)
    vault_password: bytes | None = None
    _vault: VaultLib | None = field(default=None, init=False, repr=False, compare=False)

    def vault(self) -> VaultLib:
        """ansible-core's VaultLib for vault_password (made on first use: importing ansible takes ~0.3 s)."""
        if not self.vault_password:
            raise ProvisionError("the vault password is empty")  # ansible-vault refuses it too
        if self._vault is None:
            self._vault = _vault_lib(self.vault_password)
        return self._vault

    def read_private(self, key: DkimKey) -> bytes:
        """The private key of `key` as plaintext PEM, decrypting an ansible-vault file."""
        return self.read_secret(key.path, "DKIM key", "run `provision keys` to create missing keys")

    def read_secret(self, path: Path, what: str, missing_hint: str) -> bytes:
        """The file `path` (a `what`: DKIM key, TLS key) as plaintext, decrypting an ansible-vault file."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ProvisionError(f"cannot read {what} {path}: {exc.strerror or exc}; {missing_hint}") from None
        if not data.startswith(VAULT_HEADER):
            return data
        if self.vault_password is None:
            raise ProvisionError(f"{path} is encrypted with ansible-vault; pass --vault-password-file FILE or set {VAULT_PASSWORD_ENV}")
        from ansible.errors import AnsibleError
        from ansible.parsing.vault import AnsibleVaultFormatError

        try:
            return self.vault().decrypt(data)
        except AnsibleVaultFormatError as exc:
            raise ProvisionError(f"cannot decrypt {path}: the ansible-vault file is damaged ({exc}); restore it from version control") from None
        except AnsibleError:
            raise ProvisionError(f"cannot decrypt {path}: wrong vault password?") from None

    def key_path(self, domain: str, selector: str) -> Path:
        return self.state_dir / "dkim" / domain / f"{selector}.pem"

    def keys(self, domain: str, statuses: Iterable[KeyStatus] = (KeyStatus.ACTIVE, KeyStatus.STANDBY, KeyStatus.RETIRED)) -> list[DkimKey]:
        wanted = set(statuses)
        out = []
        for gen in self.domains.get(domain, []):
            if gen.status in wanted:
                for algorithm in sorted(gen.algorithms):
                    selector = gen.selector(algorithm)
                    out.append(DkimKey(domain, selector, algorithm, gen.status, self.key_path(domain, selector)))
        return out

    def signing_keys(self, domain: str) -> list[DkimKey]:
        return self.keys(domain, (KeyStatus.ACTIVE,))


def state_dir_for(site_path: Path, state: Path | None) -> Path:
    return state if state is not None else site_path.parent / "state"


def _vault_lib(password: bytes) -> VaultLib:
    from ansible.parsing.vault import VaultLib, VaultSecret

    return VaultLib([("default", VaultSecret(password))])


def vault_password_from(file: Path | None, env: Mapping[str, str]) -> bytes | None:
    """The vault password from `file`, else from the file named by $ANSIBLE_VAULT_PASSWORD_FILE; None if neither.

    Read as ansible-vault does, so both agree on the password: surrounding whitespace and line
    ends are stripped, an empty password is refused, and an executable file is run as a script
    whose standard output is the password (a `*-client` script gets `--vault-id default`).
    """
    if file is None:
        named = env.get(VAULT_PASSWORD_ENV, "")
        if not named:
            return None
        file, source = Path(named).expanduser(), f" (from ${VAULT_PASSWORD_ENV})"
    else:
        source = ""
    if file.is_dir():
        raise ProvisionError(f"vault password file {file}{source} is a directory")
    if file.is_file() and os.access(file, os.X_OK):
        script_name = os.path.splitext(file.name)[0]
        cmd = [str(file.resolve())] + (["--vault-id", "default"] if script_name.endswith("-client") else [])
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, check=False)  # stderr stays the user's, as with ansible
        except OSError as exc:
            raise ProvisionError(f"cannot run vault password script {file}{source}: {exc.strerror or exc}") from None
        if proc.returncode != 0:
            raise ProvisionError(f"vault password script {file}{source} exited with status {proc.returncode}")
        password = proc.stdout.strip(b"\r\n")
    else:
        try:
            password = file.read_bytes().strip()
        except OSError as exc:
            raise ProvisionError(f"cannot read vault password file {file}{source}: {exc.strerror or exc}") from None
    if not password:
        raise ProvisionError(f"vault password file {file}{source} gives an empty password")
    return password


def load_state(state_dir: Path, vault_password: bytes | None = None) -> KeyState:
    path = state_dir / STATE_FILE
    ks = KeyState(state_dir, vault_password=vault_password)
    if not path.exists():
        return ks
    try:
        data = yaml_rs.loads(path.read_text(encoding="utf-8"), parse_datetime=False) or {}
        if not isinstance(data, dict):
            raise ValueError("not a mapping")
        for domain, gens in (data.get("domains") or {}).items():
            ks.domains[domain] = [Generation(g["name"], KeyStatus(g["status"]), str(g["since"]), list(g.get("algorithms") or [])) for g in gens]
    except (yaml_rs.YAMLDecodeError, KeyError, ValueError, TypeError, AttributeError) as exc:
        raise ProvisionError(f"{path}: the DKIM state file is damaged ({exc}); restore it from version control") from None
    return ks


def save_state(ks: KeyState, site_name: str) -> None:
    import yaml

    header = (
        f"# DKIM key state of site {site_name}, kept by `provision keys`.\n"
        "# Generations per domain: active signs, standby is published for the next rotation,\n"
        "# retired is still published for verification, withdrawn is published revoked (p=).\n"
    )
    body = {"version": 1, "domains": {d: [g.as_dict() for g in gens] for d, gens in sorted(ks.domains.items())}}
    atomic_write(ks.state_dir / STATE_FILE, header + yaml.safe_dump(body, sort_keys=True, allow_unicode=True), 0o644, STATE_DIR_MODE)


# ---------------------------------------------------------------------------- generation


def generate_private_key(algorithm: str) -> bytes:
    """A new private key as PKCS#8 PEM (RSA: e=65537; RFC 8301 §3.2 requires >= 1024, we use >= 2048)."""
    # Imported here, like yaml in save_state: a run with nothing to do (10,000 keys present)
    # should not pay ~40 ms importing what it does not use.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    if algorithm == DkimKeyType.ED25519.value:
        key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey = ed25519.Ed25519PrivateKey.generate()
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=int(algorithm.split("-")[1]))
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _generate_job(job: tuple[str, str]) -> tuple[str, bytes]:
    path, algorithm = job
    return path, generate_private_key(algorithm)


def _next_name(used: set[str], today: dt.date) -> str:
    prefix = f"s{today:%Y%m}"
    for letters in (string.ascii_lowercase, [a + b for a in string.ascii_lowercase for b in string.ascii_lowercase]):
        for letter in letters:
            if prefix + letter not in used:
                return prefix + letter
    raise ProvisionError("no selector name left for this month")  # 702 rotations in a month


def ensure_keys(
    site: Site,
    state_dir: Path,
    today: dt.date | None = None,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    vault_password: bytes | None = None,
    made: list[str] | None = None,
) -> tuple[KeyState, int]:
    """Every domain gets an active and a standby generation with a key per algorithm.

    Existing keys are never touched (nor re-encrypted). With `vault_password`, new keys are
    written as ansible-vault files. Returns the state and how many keys were generated; the
    path of each key written is appended to `made` as it is written (see undo_new_keys).
    """
    today = today or dt.date.today()
    ks = load_state(state_dir, vault_password)
    changed = advance(ks, today)
    jobs: list[tuple[str, str]] = []
    # Paths as plain strings (== str(ks.key_path(...))): with 10,000 keys, building Path objects
    # took more time than the stat calls themselves on a run where nothing changes.
    key_dir = os.fspath(state_dir / "dkim")
    exists = os.path.exists
    for domain in sorted(site.domains):
        algorithms = [k.value for k in site.dkim_policy(domain).keys]
        gens = ks.domains.setdefault(domain, [])
        used = {g.name for g in gens}
        for status in (KeyStatus.ACTIVE, KeyStatus.STANDBY):
            if not any(g.status is status for g in gens):
                name = _next_name(used, today)
                used.add(name)
                gens.append(Generation(name, status, today.isoformat(), []))
                changed = True
        for gen in gens:
            if gen.status not in (KeyStatus.ACTIVE, KeyStatus.STANDBY):
                continue
            for algorithm in algorithms:
                if algorithm not in gen.algorithms:
                    gen.algorithms.append(algorithm)
                    changed = True
                path = f"{key_dir}/{domain}/{gen.selector(algorithm)}.pem"
                if not exists(path):
                    jobs.append((path, algorithm))
    if jobs:
        _run_jobs(jobs, progress, workers, ks.vault() if ks.vault_password is not None else None, made)
    if changed or not (state_dir / STATE_FILE).exists():
        save_state(ks, site.name)
    return ks, len(jobs)


def _run_jobs(
    jobs: list[tuple[str, str]], progress: Callable[[int, int], None] | None, workers: int | None, vault: VaultLib | None, made: list[str] | None = None
) -> None:
    """Generate keys (in worker processes unless workers == 1) and write them here, encrypting
    with `vault` in this process: the plaintext PEM never touches the disk when a vault is given."""
    done = 0
    total = len(jobs)

    def write(results: Iterable[tuple[str, bytes]]) -> None:
        from provisioner.keys.public import dkim_public_value

        nonlocal done
        for path, pem in results:
            if made is not None:
                made.append(path)  # before the write: a half-done pair is undone too
            atomic_write(Path(path), vault.encrypt(pem) if vault is not None else pem, 0o600, STATE_DIR_MODE)
            # The public half (not secret) beside it: records never need to decrypt the key.
            k, p = dkim_public_value(pem)
            atomic_write(Path(path).with_suffix(".pub"), f"{k} {p}\n", 0o644, STATE_DIR_MODE)
            done += 1
            if progress:
                progress(done, total)

    if total == 1 or workers == 1:
        write(map(_generate_job, jobs))
        return
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 2) as pool:
        write(pool.map(_generate_job, jobs, chunksize=max(1, min(64, total // 32))))


def _age(gen: Generation, today: dt.date) -> int:
    return (today - dt.date.fromisoformat(gen.since)).days


def advance(ks: KeyState, today: dt.date) -> bool:
    """Move retired generations to withdrawn, and withdrawn ones out, when their time is up."""
    changed = False
    for domain, gens in ks.domains.items():
        for gen in gens:
            if gen.status is KeyStatus.RETIRED and _age(gen, today) >= RETIRED_DAYS:
                gen.status, gen.since = KeyStatus.WITHDRAWN, today.isoformat()
                for algorithm in gen.algorithms:
                    ks.key_path(domain, gen.selector(algorithm)).unlink(missing_ok=True)
                changed = True
    return changed


def standby_ready(gen: Generation) -> dt.date:
    """The first day a rotation to standby `gen` is allowed (PUBLISH_GRACE_DAYS after it was made)."""
    return dt.date.fromisoformat(gen.since) + dt.timedelta(days=PUBLISH_GRACE_DAYS)


def rotate(
    site: Site,
    state_dir: Path,
    domains: list[str],
    today: dt.date | None = None,
    vault_password: bytes | None = None,
    force: bool = False,
    gate: Callable[[KeyState], None] | None = None,
) -> KeyState:
    """Standby becomes active, the active one is retired, a new standby is made (vault-encrypted with `vault_password`).

    Refused, for every domain at once and before anything changes, when a domain's standby is
    younger than PUBLISH_GRACE_DAYS (its record may not be in DNS yet), unless `force`. Then
    `gate(state)` (unless `force`) may refuse too, by raising: the DNS check of
    provisioner.dns.rotation, which asks the zone's servers whether they serve the standby.
    """
    today = today or dt.date.today()
    for domain in domains:
        if domain not in site.domains:
            raise ProvisionError(f"{domain} is not a domain of site {site.name}")
    ks, _ = ensure_keys(site, state_dir, today, vault_password=vault_password)
    young = [(d, g) for d in domains for g in ks.domains[d] if g.status is KeyStatus.STANDBY and standby_ready(g) > today]
    if young and not force:
        first, gen = young[0]
        others = f" (and {len(young) - 1} more domain{'s' * (len(young) != 2)})" if len(young) > 1 else ""
        raise ProvisionError(
            f"{first}{others}: the standby {gen.name} was made on {gen.since}; mail signed with it before its record is "
            f"published and seen fails DKIM. Publish its record ({gen.name}._domainkey.{first}, in build/dns/ after render), "
            f"then rotate on or after {standby_ready(gen).isoformat()}; --force rotates now if you know it is published"
        )
    if gate is not None and not force:
        gate(ks)
    for domain in domains:
        for gen in ks.domains[domain]:
            if gen.status is KeyStatus.ACTIVE:
                gen.status, gen.since = KeyStatus.RETIRED, today.isoformat()
            elif gen.status is KeyStatus.STANDBY:
                gen.status, gen.since = KeyStatus.ACTIVE, today.isoformat()
    save_state(ks, site.name)
    ks, _ = ensure_keys(site, state_dir, today, vault_password=vault_password)  # the new standby
    return ks


def undo_new_keys(state_dir: Path, made: list[str], state_before: bytes | None) -> None:
    """Delete the keys a failed run wrote (`made`, from ensure_keys) with their public halves,
    and put dkim.yaml back as it was (`state_before`; None: it did not exist), so a failed
    render leaves the state directory as it found it. Nothing else is touched."""
    if not made:
        return
    for path in made:
        for name in (path, os.path.splitext(path)[0] + ".pub"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
    for directory in sorted({os.path.dirname(p) for p in made}):
        with contextlib.suppress(OSError):  # only when empty: a directory with other keys stays
            os.rmdir(directory)
    state_file = state_dir / STATE_FILE
    if state_before is None:
        with contextlib.suppress(FileNotFoundError):
            state_file.unlink()
    else:
        atomic_write(state_file, state_before, 0o644, STATE_DIR_MODE)


@contextlib.contextmanager
def keys_undone_on_failure(state_dir: Path) -> Iterator[list[str]]:
    """`with keys_undone_on_failure(state) as made: ensure_keys(..., made=made); ...`: when the
    block raises, the keys it made are deleted and dkim.yaml restored (undo_new_keys)."""
    try:
        before: bytes | None = (state_dir / STATE_FILE).read_bytes()
    except FileNotFoundError:
        before = None
    except OSError as exc:
        raise ProvisionError(f"cannot read {state_dir / STATE_FILE}: {exc.strerror or exc}") from None
    made: list[str] = []
    try:
        yield made
    except BaseException:
        undo_new_keys(state_dir, made, before)
        raise


def require_keys(site: Site, ks: KeyState) -> list[str]:
    """Domains that have no signing key in the state (render refuses to guess)."""
    return [d for d in sorted(site.domains) if not ks.signing_keys(d) or not all(k.path.exists() for k in ks.signing_keys(d))]
