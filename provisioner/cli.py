"""The command line: parse, call one function, print, map errors to exit codes. No logic here."""

from __future__ import annotations

import getpass
import io
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from provisioner.errors import ProvisionError, SiteInvalid
from provisioner.textsafe import visible


# The choices of --format and --lang: click checks them (a wrong one is a usage error, 64) and
# --help lists them.
class TextFormat(StrEnum):
    text = "text"
    json = "json"


class CheckFormat(StrEnum):
    table = "table"
    json = "json"


class PlanFormat(StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"


class DnsFormat(StrEnum):  # provisioner.dns.FORMATS (tests/test_cli.py holds them equal)
    zone = "zone"
    json = "json"
    octodns = "octodns"
    sheet = "sheet"
    pdf = "pdf"


class Lang(StrEnum):
    en = "en"
    ja = "ja"


# Exit codes. Every command: 0 success, 1 an error it explains (bad site file, failed host),
# 64 a usage error (EX_USAGE, sysexits.h: click's own 2 would read as plan's "changes"),
# 70 an internal error (EX_SOFTWARE), 130 interrupted. plan and inspect add codes of their own.
EX_USAGE = 64
# Typer 0.29 carries its own click (typer._click), older ones use click: take the classes from
# the exception typer exports, whichever click it is.
_CLICK_ERRORS: dict[str, Any] = {c.__name__: c for c in typer.BadParameter.__mro__}
UsageError, ClickException = _CLICK_ERRORS["UsageError"], _CLICK_ERRORS["ClickException"]
COMMON_EXIT = "64 usage error (unknown command or option, bad or missing argument), 70 internal error, 130 interrupted"
EXIT = {
    "validate": "0 valid, 1 not valid (every problem listed)",
    "keys": "0 keys present (or rotated), 1 error or refused",
    "render": "0 rendered, 1 error (the previous build is left as it was)",
    "dns": "0 records written, 1 error",
    "dns push": "0 pushed (or nothing to push), 2 with --dry-run: changes to push, 1 error (a provider that fails or refuses, an unsafe plan without --force)",
    "check": "0 every required check passes (with --strict: no warnings either), 1 a check fails or DNS cannot be asked",
    "plan": "0 nothing would change, 2 changes, 1 error (a failed or unreachable host)",
    "apply": "0 applied (or nothing to change), 1 a host failed or the plan was not confirmed",
    "inspect": "0 authentic, 2 not authentic, 3 cannot tell, 1 unreadable input",
    "passwd": "0 hash printed, 1 error (the two passwords differ)",
    "schema": "0",
}


def _epilog(command: str, example: str) -> str:
    return f"\b\nExample: {example}\n\nExit codes: {EXIT[command]}; {COMMON_EXIT}."


def _count(n: int, noun: str, plural: str = "") -> str:
    """'1 host', '2 hosts', '1 mailbox', '2 mailboxes'."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    help=(
        "Turn one declarative site file into a standards-clean mail system.\n\n"
        "\b\nExamples:\n"
        "  provision validate site.yaml\n"
        "  provision keys site.yaml\n"
        "  provision render site.yaml -o build/\n"
        "  provision dns site.yaml --format sheet --lang ja -o sheet.html\n"
        "  provision dns push site.yaml --dry-run\n"
        "  provision check site.yaml --nameserver 192.0.2.53\n"
        "  provision inspect message.eml --site site.yaml --verify\n"
        "  provision plan site.yaml --format markdown\n"
        "  provision apply site.yaml -i hosts.yml   (shows the plan, asks before changing)\n"
        "  echo 'secret' | provision passwd\n"
        "  provision schema > site.schema.json"
    ),
    epilog=(
        "Docs: README.md and docs/ in the project.\n\n"
        f"Exit codes: 0 success, 1 an error it explains; {COMMON_EXIT}. "
        "plan: 2 changes; inspect: 2 not authentic, 3 cannot tell (see each command's --help).\n\n"
        "Shell completion: provision --install-completion (bash, zsh, fish), or --show-completion to see the script."
    ),
)
# No markup, emoji codes or highlighting: a string printed here is shown as it is, never
# interpreted ('[link=...]' or ':warning:' in a DNS answer or a header is data).
out = Console(highlight=False, markup=False, emoji=False)
err = Console(stderr=True, highlight=False, markup=False, emoji=False)

SiteArg = Annotated[Path, typer.Argument(help="the site file (site.yaml)", show_default=False)]
StateOpt = Annotated[Path | None, typer.Option("--state", help="state directory (default: state/ beside the site file)")]
FormatOpt = Annotated[TextFormat, typer.Option("--format", help="output format")]
LangOpt = Annotated[Lang, typer.Option("--lang", help="language of the report")]
VaultOpt = Annotated[
    Path | None,
    typer.Option("--vault-password-file", help="ansible-vault password file: DKIM keys are written and read encrypted (or set ANSIBLE_VAULT_PASSWORD_FILE)"),
]


def _print_json(data: object) -> None:
    """JSON to stdout as UTF-8, indented as before. Written directly: rich's print_json parses
    the text again and highlights every token (808 MB and 15 s for 7,000 Authentication-Results)."""
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:
        sys.stdout.write(text)
    else:  # a lone surrogate (a file name not in UTF-8) is written as its JSON escape, \udcff
        buffer.write(text.encode("utf-8", "backslashreplace"))
    sys.stdout.flush()


def _fail(exc: ProvisionError) -> NoReturn:
    if isinstance(exc, SiteInvalid):
        for problem in exc.problems:
            err.print(str(problem), markup=False, soft_wrap=True)
        err.print(f"{len(exc.problems)} problem{'s' * (len(exc.problems) != 1)} found", markup=False)
    else:
        err.print(visible(f"error: {exc}"), markup=False, soft_wrap=True)
    raise typer.Exit(1)


def _warn(warnings: list[str]) -> None:
    """Things the site author must know (render's and dns's notes, site advice), on stderr."""
    for warning in warnings:
        err.print(visible(f"warning: {warning}"), markup=False, soft_wrap=True)


def _vault(vault_password_file: Path | None) -> bytes | None:
    from provisioner.keys.store import vault_password_from

    return vault_password_from(vault_password_file, os.environ)


@contextmanager
def _state_locked(site: Path, state: Path | None) -> Iterator[None]:
    """For a command that writes the state directory or the build: one at a time
    (provisioner.statelock); a second waits, saying so on stderr."""
    from provisioner.keys.store import state_dir_for
    from provisioner.statelock import state_lock

    with state_lock(state_dir_for(site, state), waiting=lambda why: err.print(visible(f"note: {why}"), markup=False, soft_wrap=True)):
        yield


def _key_progress(bar: Progress) -> Any:
    """A progress callback (done, total) for DKIM key generation on `bar`."""
    task = bar.add_task("DKIM keys", total=None)
    return lambda done, total: bar.update(task, completed=done, total=total)


def _progress() -> Progress:
    """A transient progress display on stderr, only on a terminal: nothing in logs or pipes."""
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=True)
    bar.disable = not err.is_terminal
    return bar


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("provisioner")
    except PackageNotFoundError:  # run from a checkout that was never installed
        from provisioner import __version__

        return __version__


def _show_version(value: bool) -> None:
    if value:
        out.print(f"provision {_version()}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="print the version and exit", callback=_show_version, is_eager=True)] = False,
) -> None:
    pass


@app.command(epilog=_epilog("validate", "provision validate examples/all-in-one/site.yaml"))
def validate(site: SiteArg, fmt: FormatOpt = TextFormat.text) -> None:
    """Check a site file; list every problem as FILE:LINE:COL: key: message. Exit 0 valid, 1 not."""
    from provisioner.build import validate_command
    from provisioner.secrets import process_env

    try:
        loaded, warnings = validate_command(site, process_env())  # {env:} set, {file:} readable: what render needs
    except SiteInvalid as exc:
        if fmt is TextFormat.json:
            _print_json({"valid": False, "problems": [p.__dict__ for p in exc.problems]})
            raise typer.Exit(1) from None
        _fail(exc)
    _warn(warnings)
    if fmt is TextFormat.json:
        _print_json({"valid": True, "problems": []})
    else:
        s = loaded.site
        mailboxes = sum(len(d.mailboxes) for d in s.domains.values())
        out.print(
            visible(f"{site}: valid ({_count(len(s.hosts), 'host')}, {_count(len(s.domains), 'domain')}, {_count(mailboxes, 'mailbox', 'mailboxes')})"),
            soft_wrap=True,
        )


@app.command(epilog=_epilog("keys", "provision keys examples/all-in-one/site.yaml --rotate smallco.example"))
def keys(
    site: SiteArg,
    state: StateOpt = None,
    rotate: Annotated[list[str] | None, typer.Option("--rotate", help="rotate this domain's keys (repeatable)")] = None,
    rotate_all: Annotated[bool, typer.Option("--rotate-all", help="rotate every domain's keys")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="rotate without waiting: a standby made less than 2 days ago, or not yet served by the zone's servers")
    ] = False,
    nameserver: Annotated[
        list[str] | None, typer.Option("--nameserver", help="with --rotate: ask these servers, IP[:PORT] (repeatable), instead of the zone's NS hosts")
    ] = None,
    grace: Annotated[
        int, typer.Option("--grace", min=0, help="with --rotate: seconds to wait beyond the standby record's TTL once every server serves it")
    ] = 3600,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, help="with --rotate: seconds per DNS question")] = 2.0,
    vault_password_file: VaultOpt = None,
) -> None:
    """Make sure every domain has its DKIM keys (active and standby); never regenerates a key.

    With --rotate: the standby key becomes active, the active one is retired (still published
    for 14 days), and a new standby is made; it prints the records to publish now and the ones
    to keep, revoke and remove, with dates. A standby made less than 2 days ago is not rotated
    to, nor one that the zone's authoritative servers have not all served for its TTL + --grace
    (asked directly; docs/keys.md), unless --force. Run render and apply afterwards.
    """
    try:
        with _state_locked(site, state):
            vault = _vault(vault_password_file)
            if rotate or rotate_all:
                import datetime as dt

                from provisioner.dns.command import RotationRefused, rotate_command

                try:
                    lines = rotate_command(
                        site,
                        state,
                        vault,
                        rotate or [],
                        all_domains=rotate_all,
                        force=force,
                        nameserver=nameserver or [],
                        grace=dt.timedelta(seconds=grace),
                        timeout=timeout,
                    )
                except RotationRefused as refused:
                    for reason in refused.reasons:  # one line each: a domain's standby
                        err.print(visible(f"error: {reason}"), markup=False, soft_wrap=True)
                    err.print(refused.FORCE, markup=False, soft_wrap=True)
                    raise typer.Exit(1) from None
                for line in lines:
                    out.print(visible(line), soft_wrap=True)
                return
            from provisioner.keys.command import keys_command

            with _progress() as bar:
                state_dir, made = keys_command(site, state, vault, progress=_key_progress(bar))
    except ProvisionError as exc:
        _fail(exc)
    out.print(visible(f"{made} key{'s' * (made != 1)} generated in {state_dir}" if made else f"all keys present in {state_dir}"))


@app.command(epilog=_epilog("render", "provision render examples/all-in-one/site.yaml -o build/"))
def render(
    site: SiteArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="build directory")] = Path("build"),
    state: StateOpt = None,
    fmt: FormatOpt = TextFormat.text,
    vault_password_file: VaultOpt = None,
) -> None:
    """Render each host's Postfix, Dovecot and OpenDKIM files into OUTPUT/<host>/, the DNS records into OUTPUT/dns/, and manifest.json.

    Missing DKIM keys and self-signed certificates are created in the state directory first.
    """
    from provisioner.build import build
    from provisioner.secrets import process_env

    try:
        with _state_locked(site, state):
            vault = _vault(vault_password_file)
            with _progress() as bar:
                result = build(site, output, state, process_env(), vault, progress=_key_progress(bar))
    except ProvisionError as exc:
        _fail(exc)
    trees, dns_files, data = result.trees, result.dns_files, result.manifest
    _warn(result.warnings)
    if fmt is TextFormat.json:
        _print_json(data)
        return
    table = Table(title=visible(f"rendered into {output}/"), show_lines=False)
    table.add_column("host")
    table.add_column("files", justify="right")
    table.add_column("written")
    for host, tree in sorted(trees.items()):
        paths = [f"/{p}" for p in sorted(tree.files) if "/opendkim/keys/" not in p]
        keys = len(tree.files) - len(paths)
        shown = paths if len(paths) <= 20 else [*paths[:15], f"... and {len(paths) - 15} more"]
        if keys:
            shown.append(f"{keys} DKIM private key{'s' * (keys != 1)} in /etc/opendkim/keys/")
        table.add_row(visible(host), str(len(tree.files)), "\n".join(visible(line) for line in shown))
    out.print(table)
    sheets = "sheet.html, sheet.ja.html" if "dns/sheet.html" in dns_files else "no sheet for this many domains: provision dns --format sheet"
    out.print(visible(f"DNS records to publish: {output / 'dns'}/ (zones, records.json, octodns/, {sheets})"))
    out.print(visible(f"manifest: {output / 'manifest.json'}"))
    if result.dns_diff is not None:
        from provisioner.dns.diff import diff_lines

        for line in diff_lines(result.dns_diff, f"{output / 'dns'}/"):
            out.print(visible(line), soft_wrap=True)


@app.command(epilog=_epilog("dns", "provision dns examples/all-in-one/site.yaml --format sheet --lang ja -o sheet.html"))
def dns(
    site: SiteArg,
    fmt: Annotated[DnsFormat, typer.Option("--format", help="output format")] = DnsFormat.zone,
    lang: Annotated[Lang, typer.Option("--lang", help="language of the sheet and the PDF")] = Lang.en,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="write to this file instead of stdout")] = None,
    standalone: Annotated[bool, typer.Option("--standalone", help="zone: add SOA and NS so each zone stands alone")] = False,
    state: StateOpt = None,
    vault_password_file: VaultOpt = None,
) -> None:
    """Print the DNS records to publish: zone fragments, JSON, octoDNS YAML, or the printable sheet.

    Missing DKIM keys are created in the state directory first (their public keys are records).
    """
    from provisioner.dns.command import dns_command

    try:
        with _state_locked(site, state):
            result = dns_command(site, state, _vault(vault_password_file), fmt.value, lang.value, standalone, output)
    except ProvisionError as exc:
        _fail(exc)
    _warn(result.warnings)
    sys.stdout.buffer.write(result.data)


@app.command(name="dns push", epilog=_epilog("dns push", "provision dns push examples/multi-host/site.yaml --dry-run"))
def dns_push(
    site: SiteArg,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="only show the plan: exit 2 when the provider differs from the site (drift), 0 when not")] = False,
    force: Annotated[bool, typer.Option("--force", help="push even a plan over octoDNS's safety thresholds (many of our records updated or deleted)")] = False,
    fmt: FormatOpt = TextFormat.text,
    state: StateOpt = None,
    vault_password_file: VaultOpt = None,
) -> None:
    """Push the records of every domain with a dns.targets provider through octoDNS: per zone,
    what is created, updated and deleted. Only records provision wrote are ever changed or deleted.

    Written `provision dns push` (two words). Secrets in dns.targets come from {env:}/{file:}.
    """
    from provisioner.dns.push import push_command, push_json, push_lines
    from provisioner.secrets import process_env

    try:
        with _state_locked(site, state):
            result = push_command(site, state, _vault(vault_password_file), process_env(), dry_run=dry_run, force=force)
    except ProvisionError as exc:
        _fail(exc)
    if fmt is TextFormat.json:
        _print_json(push_json(result))
    else:
        for line in push_lines(result):
            out.print(visible(line), markup=False, soft_wrap=True)
    raise typer.Exit(result.exit_code)


@app.command(epilog=_epilog("check", "provision check examples/all-in-one/site.yaml --nameserver 127.0.0.1:5353"))
def check(
    site: SiteArg,
    nameserver: Annotated[list[str] | None, typer.Option("--nameserver", help="ask this server, IP[:PORT] (repeatable); default: the system resolver")] = None,
    dnsbl_nameserver: Annotated[
        list[str] | None,
        typer.Option(
            "--dnsbl-nameserver", help="resolver for blocklist queries, IP[:PORT]; not a public resolver (Spamhaus answers those with 127.255.255.254)"
        ),
    ] = None,
    fmt: Annotated[CheckFormat, typer.Option("--format", help="output format")] = CheckFormat.table,
    strict: Annotated[bool, typer.Option("--strict", help="warnings fail too")] = False,
    problems_only: Annotated[bool, typer.Option("--problems-only", help="table: hide checks that pass")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="seconds per DNS query")] = 2.0,
    concurrency: Annotated[int, typer.Option("--concurrency", help="domains checked at once")] = 32,
    tls: Annotated[
        bool,
        typer.Option(
            "--tls", help="also connect to each host's mail ports and HTTPS: TLS, names, expiry, trust, AUTH, one certificate per host, MTA-STS policy"
        ),
    ] = False,
    tls_timeout: Annotated[float, typer.Option("--tls-timeout", help="seconds per socket operation for --tls")] = 5.0,
    ca: Annotated[Path | None, typer.Option("--ca", help="--tls: verify against this PEM CA file instead of the system trust store")] = None,
    host_cert: Annotated[
        list[str] | None,
        typer.Option("--host-cert", help="--tls: HOST=FILE, the newest certificate on that host; every service must serve it (repeatable)"),
    ] = None,
    state: StateOpt = None,
    vault_password_file: VaultOpt = None,
) -> None:
    """Verify from outside what the world sees: records, SPF (10 lookups, check_host), DKIM keys,
    DMARC, PTR, DNS blocklists. Exit 0 when every required check passes, 1 when any fails."""
    from provisioner.check.command import check_command
    from provisioner.check.report import report_json, report_plain, report_table

    try:
        vault = _vault(vault_password_file)
        with _progress() as bar:
            # a dead resolver is detected before any row (ResolverUnreachable); the timer shows the wait
            task = bar.add_task("checking", total=None)
            report = check_command(
                site,
                state,
                vault,
                nameserver or [],
                dnsbl_nameserver or [],
                timeout=timeout,
                concurrency=concurrency,
                tls=tls,
                tls_timeout=tls_timeout,
                ca=ca,
                host_cert=host_cert or [],
                progress=lambda done, total: bar.update(task, completed=done, total=total),
                asking=lambda resolver: bar.update(task, description=f"checking via {resolver}"),
            )
    except ProvisionError as exc:
        _fail(exc)
    if fmt is CheckFormat.json:
        _print_json(report_json(report))
    elif out.is_terminal:
        out.print(report_table(report, problems_only=problems_only))
    else:  # a pipe or a file: whole values, no columns sized to a terminal (docs/check.md)
        sys.stdout.write(report_plain(report, problems_only=problems_only))
    raise typer.Exit(report.exit_status(strict))


InventoryOpt = Annotated[Path | None, typer.Option("-i", "--inventory", help="Ansible inventory (default: from the site's ansible: blocks)")]
LimitOpt = Annotated[str | None, typer.Option("--limit", help="only these hosts (Ansible pattern)")]
BuildOpt = Annotated[Path, typer.Option("--build", help="build directory rendered into first")]


@app.command(epilog=_epilog("plan", "provision plan examples/multi-host/site.yaml -i inventories/example --format markdown"))
def plan(
    site: SiteArg,
    inventory: InventoryOpt = None,
    limit: LimitOpt = None,
    fmt: Annotated[PlanFormat, typer.Option("--format", help="output format (markdown: for a pull-request comment)")] = PlanFormat.text,
    build_dir: BuildOpt = Path("build"),
    state: StateOpt = None,
    vault_password_file: VaultOpt = None,
) -> None:
    """Render, then show per host which files, tables and services apply would change (Ansible check mode).

    Exit 0: no changes; 2: changes; 1: error. Secrets are never shown.
    """
    from provisioner.apply.flow import Target, plan_all
    from provisioner.apply.report import plan_exit, plan_json, plan_markdown
    from provisioner.secrets import process_env

    try:
        with _state_locked(site, state):
            vault = _vault(vault_password_file)
            with _progress() as bar:
                target = Target(site, build_dir, state, process_env(), vault, inventory, limit)
                result, dns_plan = plan_all(target, _key_progress(bar), built=lambda _: bar.stop())
    except ProvisionError as exc:
        _fail(exc)
    if fmt is PlanFormat.json:
        print(plan_json(result, dns=dns_plan))
    else:
        out.print(plan_markdown(result, dns=dns_plan), markup=False, soft_wrap=True)
    raise typer.Exit(plan_exit(result, dns_plan))


@app.command(
    epilog=_epilog("apply", "provision apply examples/multi-host/site.yaml -i inventories/example   (shows the plan and asks before changing anything)")
)
def apply(
    site: SiteArg,
    inventory: InventoryOpt = None,
    limit: LimitOpt = None,
    serial: Annotated[int | None, typer.Option("--serial", min=1, help="the MX hosts N at a time, stopping at the first failure; then the rest")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="apply without asking (needed without a terminal)")] = False,
    fmt: FormatOpt = TextFormat.text,
    build_dir: BuildOpt = Path("build"),
    state: StateOpt = None,
    vault_password_file: VaultOpt = None,
) -> None:
    """Render, show the plan, ask, then configure the hosts with Ansible; progress per host and task.

    Without a terminal it refuses unless --yes. On failure it names the host and task, exit 1.
    """
    from provisioner.apply.flow import Target, apply_command
    from provisioner.apply.plan import PlanResult, TaskEvent
    from provisioner.apply.report import apply_json, dns_markdown, plan_markdown
    from provisioner.secrets import process_env

    if not yes and not sys.stdin.isatty():
        _fail(ProvisionError("apply changes hosts: confirm at a terminal, or pass --yes (for pipelines)"))

    def confirm(planned: PlanResult) -> bool:
        out.print(plan_markdown(planned), markup=False, soft_wrap=True)
        return typer.confirm("Apply these changes?", default=False)

    def show(event: TaskEvent) -> None:
        line = f"{event.host}: {event.task}: {event.status}"
        err.print(visible(line + (f": {event.message}" if event.status == "failed" and event.message else "")), markup=False, soft_wrap=True)

    try:
        with _state_locked(site, state):
            vault = _vault(vault_password_file)
            with _progress() as bar:
                outcome = apply_command(
                    Target(site, build_dir, state, process_env(), vault, inventory, limit, serial=serial),
                    confirm=None if yes else confirm,
                    listener=show,
                    key_progress=_key_progress(bar),
                    built=lambda _: bar.stop(),
                    show_dns=lambda planned: out.print(dns_markdown(planned), markup=False, soft_wrap=True),
                )
    except ProvisionError as exc:
        _fail(exc)
    result = outcome.result
    if result is None:
        if outcome.why == "plan failed":
            if outcome.planned is not None:
                out.print(plan_markdown(outcome.planned), markup=False, soft_wrap=True)
            raise typer.Exit(1)
        if outcome.why == "nothing to change":
            if outcome.planned is not None:
                out.print(plan_markdown(outcome.planned), markup=False, soft_wrap=True)
            out.print("nothing to change")
            raise typer.Exit(0)
        err.print("not applied")
        raise typer.Exit(1)
    if fmt is TextFormat.json:
        print(apply_json(result))
    for failure in result.failures:
        err.print(visible(f"failed on {failure.host} at task '{failure.task}': {failure.message}"), markup=False, soft_wrap=True)
    if result.exit_code == 0 and fmt is not TextFormat.json:
        out.print("applied")
    raise typer.Exit(result.exit_code)


@app.command(epilog=_epilog("inspect", "provision inspect message.eml --site site.yaml --verify"))
def inspect(
    message: Annotated[str, typer.Argument(help="a saved message (.eml, the whole source), or - for standard input", show_default=False)],
    site: Annotated[Path | None, typer.Option("--site", help="trust this site's hosts (their authserv-ids and Received lines)")] = None,
    trust: Annotated[list[str] | None, typer.Option("--trust", help="trust Authentication-Results from this authserv-id (repeatable)")] = None,
    trust_address: Annotated[
        list[str] | None,
        typer.Option("--trust-address", help="IP|CIDR of your own mail servers (internal relay, load balancer): hops from it are yours (repeatable)"),
    ] = None,
    verify: Annotated[bool, typer.Option("--verify", help="re-verify DKIM, SPF and DMARC now, over DNS")] = False,
    nameserver: Annotated[list[str] | None, typer.Option("--nameserver", help="with --verify: ask this server, IP[:PORT] (repeatable)")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="seconds per DNS query")] = 2.0,
    lang: LangOpt = Lang.en,
    fmt: FormatOpt = TextFormat.text,
    max_size: Annotated[int, typer.Option("--max-size", help="refuse messages larger than this many MB")] = 64,
) -> None:
    """Read a received message's headers the way a postmaster does: envelope sender against From,
    DKIM signatures, Authentication-Results (trusted or not), the Received chain, and a verdict.
    Exit 0 authentic, 2 not authentic, 3 cannot tell, 1 unreadable input."""
    from provisioner.inspect.command import inspect_command
    from provisioner.inspect.report import EXIT, inspection_json, inspection_text

    try:
        inspection = inspect_command(message, sys.stdin, site, trust or [], trust_address or [], verify, nameserver or [], timeout, max_size * 1024 * 1024)
    except ProvisionError as exc:
        _fail(exc)
    if fmt is TextFormat.json:
        _print_json(inspection_json(inspection, lang.value))
    else:
        out.print(inspection_text(inspection, lang.value), markup=False, soft_wrap=True, end="")
    raise typer.Exit(EXIT[inspection.verdict])


@app.command(epilog=_epilog("passwd", "provision passwd   (or: echo 'secret' | provision passwd)"))
def passwd(
    raw: Annotated[bool, typer.Option("--raw", help="print the bare hash, for a {file:} or {env:} secret")] = False,
) -> None:
    """Read a password (no echo on a terminal; one line from stdin otherwise); print its {ARGON2ID}
    hash quoted for YAML, ready to paste: password: '{ARGON2ID}$argon2id$...' (unquoted, YAML
    reads {ARGON2ID} as a mapping)."""
    from provisioner.passwd import hash_password

    try:
        if sys.stdin.isatty():
            first = getpass.getpass("Password: ")
            if getpass.getpass("Again: ") != first:
                raise ProvisionError("the two passwords differ")
        else:
            first = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
        hashed = hash_password(first)
        print(hashed if raw else "'" + hashed.replace("'", "''") + "'")  # YAML single-quoted scalar (YAML 1.2 §7.3.2)
    except ProvisionError as exc:
        _fail(exc)


@app.command(epilog=_epilog("schema", "provision schema > site.schema.json"))
def schema() -> None:
    """Print the JSON Schema of the site file (for editors: yaml-language-server modeline)."""
    from provisioner.site.schema import site_schema

    print(json.dumps(site_schema(), indent=2, sort_keys=True, ensure_ascii=False))


def main() -> None:
    # A terminal or pipe that cannot encode a character (PYTHONIOENCODING=ascii, LANG=C with a
    # Japanese report) gets it as an escape rather than an internal error.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    if os.environ.get("NO_COLOR") is not None:
        out.no_color = err.no_color = True
    try:
        # standalone_mode=False: click's errors come here, so a usage error gets its own code
        # (64) instead of click's 2, which plan uses for "changes" and inspect for "not authentic".
        args = sys.argv[1:]
        if args[:2] == ["dns", "push"]:  # `provision dns push SITE`: dns itself takes SITE, so push is its own command
            args = ["dns push", *args[2:]]
        code = app(args=args, prog_name="provision", standalone_mode=False)
    except UsageError as exc:  # NoSuchOption, BadParameter, MissingParameter, no command
        exc.show()
        sys.exit(EX_USAGE)
    except ClickException as exc:  # FileError and the like: a user error, explained
        exc.show()
        sys.exit(1)
    except typer.Abort:  # EOF at a prompt (typer.confirm)
        err.print("aborted")
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - a bug must still not dump a traceback on a user
        if os.environ.get("PROVISION_DEBUG"):
            raise
        err.print(visible(f"internal error: {type(exc).__name__}: {exc} (run with PROVISION_DEBUG=1 for details, and report it)"), markup=False)
        sys.exit(70)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
