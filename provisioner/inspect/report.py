"""Views of an Inspection: plain text for people (English or Japanese), its controls made
visible (provisioner.textsafe); JSON for programs, exact (shape in docs/inspect.md)."""

from __future__ import annotations

from typing import Any

from provisioner.inspect.analyze import Inspection, Verdict
from provisioner.inspect.identity import AlignmentResult, HeaderAddress
from provisioner.inspect.received import Hop, span
from provisioner.inspect.text import say
from provisioner.inspect.verify import DkimReason
from provisioner.textsafe import visible

JSON_VERSION = 1

LABELS: dict[str, tuple[str, str]] = {
    "message": ("Message", "メッセージ"),
    "subject": ("Subject", "件名"),
    "date": ("Date", "日付"),
    "from": ("From", "差出人 (From)"),
    "sender": ("Sender", "送信者 (Sender)"),
    "return-path": ("Return-Path", "エンベロープ送信者 (Return-Path)"),
    "alignment": ("Alignment with the From domain", "差出人ドメインとの一致 (アライメント)"),
    "relaxed": ("relaxed", "緩和"),
    "strict": ("strict", "厳密"),
    "envelope": ("envelope sender", "エンベロープ送信者"),
    "signature": ("DKIM signature", "DKIM 署名"),
    "authres": ("Authentication-Results", "認証結果 (Authentication-Results)"),
    "trusted": ("trusted", "信頼する"),
    "untrusted": ("not trusted", "信頼しない"),
    "received": ("Received chain, oldest hop first", "配送経路 (Received、古い順)"),
    "entered": ("entered your servers here", "ここであなたのサーバーに入りました"),
    "entered-assumed": ("assumed entry to your servers", "あなたのサーバーへの入口 (推定)"),
    "verify": ("Re-verified now (--verify)", "再検証の結果 (--verify)"),
    "verdict": ("Verdict", "判定"),
    "notes": ("Notes", "注意"),
    "none": ("(none)", "(なし)"),
    "yes": ("yes", "はい"),
    "no": ("no", "いいえ"),
    "pass": ("PASS: authentic", "合格: 本物"),
    "fail": ("FAIL: not authenticated as its From domain", "不合格: 差出人 (From) のドメインとして認証されていません"),
    "unknown": ("UNKNOWN", "不明"),
    "record-at": ("record at", "レコードの場所"),
    "line": ("line", "行"),
    "policy": ("policy", "ポリシー"),
}


def _l(key: str, lang: str) -> str:
    en, ja = LABELS[key]
    return ja if lang == "ja" else en


def _box(box: HeaderAddress | None) -> str:
    if box is None:
        return "-"
    if not box.address:
        return "<>"
    return f"{box.display} <{box.address}>" if box.display else f"<{box.address}>"


def _yes(value: bool, lang: str) -> str:
    return _l("yes" if value else "no", lang)


def _aligned(found: AlignmentResult, lang: str) -> tuple[str, str]:
    if found is AlignmentResult.UNKNOWN:
        return "-", "-"
    return _yes(found in (AlignmentResult.STRICT, AlignmentResult.RELAXED), lang), _yes(found is AlignmentResult.STRICT, lang)


def _hop_line(hop: Hop) -> str:
    parts = [f"from {hop.from_name or '?'}"]
    seen = " ".join(x for x in (hop.reverse_name or ("unknown" if hop.reverse_unknown else ""), f"[{hop.ip}]" if hop.ip else "") if x)
    if seen:
        parts.append(f"({seen})")
    parts.append(f"by {hop.by or '?'}")
    if hop.with_protocol:
        parts.append(f"with {hop.with_protocol}")
    if hop.tls:
        parts.append(hop.tls if hop.tls != "yes" else "TLS")
    return " ".join(parts)


def inspection_text(inspection: Inspection, lang: str = "en") -> str:
    lines: list[str] = []

    def add(line: str) -> None:
        # Every line quotes the sender's text (Subject, names, Received, A-R, notes): shown with
        # its controls escaped, so no value spans lines or drives the terminal.
        lines.append(visible(line))

    m = inspection
    add(f"{_l('message', lang)}: {m.message.source}")
    add(f"  {_l('subject', lang)}: {m.subject or '-'}")
    add(f"  {_l('date', lang)}: {m.date or '-'}")
    add(f"  {_l('from', lang)}: {', '.join(_box(b) for b in m.from_) or '-'}")
    if m.sender is not None:
        add(f"  {_l('sender', lang)}: {_box(m.sender)}")
    add(f"  {_l('return-path', lang)}: {_box(m.return_path)}")
    add("")
    add(f"{_l('alignment', lang)} ({m.from_domain or '-'}): {_l('relaxed', lang)} / {_l('strict', lang)}")
    relaxed, strict = _aligned(m.envelope_alignment, lang)
    add(f"  {_l('envelope', lang)} {m.return_path.domain if m.return_path and m.return_path.address else '-'}: {relaxed} / {strict}")
    for view in m.signatures:
        relaxed, strict = _aligned(view.alignment, lang)
        sig = view.signature
        add(
            f"  {_l('signature', lang)} d={sig.domain or '?'} s={sig.selector or '?'} a={sig.algorithm or '?'}: {relaxed} / {strict}"
            + (f"  ({sig.error})" if sig.error else "")
        )
    add("")
    add(f"{_l('authres', lang)}:")
    if not m.authentication_results:
        add(f"  {_l('none', lang)}")
    for header in m.authentication_results:
        name = header.field.name + (f" i={header.arc_instance}" if header.arc_instance is not None else "")
        trust = _l("trusted", lang) if header.trusted else _l("untrusted", lang)
        add(f"  [{trust}] {header.authserv_id}  ({name}, {_l('line', lang)} {header.field.line}; {header.trust_note(lang)})")
        if header.error:
            add(f"      ! {header.error}")
        for result in header.results:
            props = " ".join(str(p) for p in result.properties)
            reason = f" reason={result.reason!r}" if result.reason else ""
            add(f"      {result.method}={result.result}{reason} {props}".rstrip())
    add("")
    add(f"{_l('received', lang)}:")
    if not m.hops:
        add(f"  {_l('none', lang)}")
    for hop in m.hops:
        when = hop.time.isoformat(sep=" ") if hop.time else "?"
        delay = (
            f"  (+{span(hop.delay)})"
            if hop.delay is not None and not span(hop.delay).startswith("-")
            else (f"  ({span(hop.delay)})" if hop.delay is not None else "")
        )
        add(f"  {hop.number}. {_hop_line(hop)}  {when}{delay}")
        if hop is m.border:
            add(f"      <- {_l('entered-assumed' if m.border_assumed else 'entered', lang)}")
        if hop.authenticated:
            add("      SMTP AUTH")
        for problem in hop.problems:
            add(f"      ! {problem(lang)}")
    if m.verified:
        add("")
        add(f"{_l('verify', lang)}:")
        for view in m.signatures:
            if view.check is not None:
                c = view.check
                why = "" if c.reason is DkimReason.VERIFIED else f" ({say(f'reason-{c.reason.value}')(lang)}: {c.detail})"
                add(f"  DKIM d={c.signature.domain} s={c.signature.selector}: {c.outcome.value}{why}")
        if m.arc is not None:
            add(f"  ARC {' -> '.join(m.arc.sealers) or '?'}: {m.arc.result}" + (f" ({m.arc.reason})" if m.arc.reason and m.arc.result != "pass" else ""))
        if m.reverse is not None:
            r = m.reverse
            seen = ", ".join(r.names) if r.names else ("?" if r.failed else "-")
            add(f"  PTR {r.address}: {seen}" + (f" (-> {r.address}: {_l('yes', lang)})" if r.confirmed else ""))
        if m.spf is not None:
            who = m.spf.mail_from or f"HELO {m.spf.helo}"
            add(f"  SPF {m.spf.address} for {who}: {m.spf.result.value}" + (f" ({m.spf.explanation})" if m.spf.explanation else ""))
        if m.dmarc is not None:
            d = m.dmarc
            where = f"{_l('record-at', lang)} _dmarc.{d.record_domain}" if d.record_domain else d.detail
            policy = f", {_l('policy', lang)} {d.policy}" if d.policy else ""
            add(f"  DMARC {d.from_domain}: {d.outcome.value}{policy} ({where})")
    add("")
    add(f"{_l('verdict', lang)}: {_l(m.verdict.value, lang)}")
    for sentence in m.summary:
        add(f"  {sentence(lang)}")
    if m.notes:
        add("")
        add(f"{_l('notes', lang)}:")
        for note in m.notes:
            add(f"  - {note(lang)}")
    return "\n".join(lines) + "\n"


def _mailbox_json(box: HeaderAddress | None) -> dict[str, str] | None:
    return None if box is None else {"display": box.display, "address": box.address, "domain": box.domain}


def inspection_json(inspection: Inspection, lang: str = "en") -> dict[str, Any]:
    m = inspection
    return {
        "version": JSON_VERSION,
        "source": m.message.source,
        "verdict": m.verdict.value,
        "evidence": m.evidence.value,
        "summary": [s(lang) for s in m.summary],
        "notes": [n(lang) for n in m.notes],
        "subject": m.subject,
        "date": m.date,
        "message_id": m.message_id,
        "from": [_mailbox_json(b) for b in m.from_],
        "sender": _mailbox_json(m.sender),
        "return_path": _mailbox_json(m.return_path),
        "from_domain": m.from_domain,
        "envelope_alignment": m.envelope_alignment.value,
        "signatures": [
            {
                "domain": v.signature.domain,
                "selector": v.signature.selector,
                "algorithm": v.signature.algorithm,
                "signed_headers": list(v.signature.signed_headers),
                "alignment": v.alignment.value,
                "error": v.signature.error,
                "verify": None
                if v.check is None
                else {
                    "result": v.check.outcome.value,
                    "reason": v.check.reason.value,
                    "detail": v.check.detail,
                    "unsigned": list(v.check.unsigned),
                    "appended": v.check.appended,
                },
            }
            for v in m.signatures
        ],
        "authentication_results": [
            {
                "field": h.field.name,
                "line": h.field.line,
                "arc_instance": h.arc_instance,
                "authserv_id": h.authserv_id,
                "trusted": h.trusted,
                "trust": h.trust_note(lang),
                "error": h.error,
                "results": [
                    {"method": r.method, "result": r.result, "reason": r.reason, "properties": {f"{p.ptype}.{p.name}": p.value for p in r.properties}}
                    for r in h.results
                ],
            }
            for h in m.authentication_results
        ],
        "received": [
            {
                "hop": hop.number,
                "line": hop.field.line,
                "from": hop.from_name,
                "helo": hop.helo,
                "reverse_name": hop.reverse_name,
                "reverse_unknown": hop.reverse_unknown,
                "reverse_forged": hop.reverse_forged,
                "ip": hop.ip,
                "by": hop.by,
                "with": hop.with_protocol,
                "tls": hop.tls,
                "authenticated": hop.authenticated,
                "id": hop.queue_id,
                "for": hop.recipient,
                "time": hop.time.isoformat() if hop.time else None,
                "delay_seconds": hop.delay.total_seconds() if hop.delay is not None else None,
                "border": hop is m.border,
                "problems": [p(lang) for p in hop.problems],
            }
            for hop in m.hops
        ],
        "border_assumed": m.border_assumed,
        "arc": None
        if m.arc is None
        else {"result": m.arc.result, "reason": m.arc.reason, "sealers": list(m.arc.sealers), "first_results": m.arc.first_results},
        "reverse": None
        if m.reverse is None
        else {"address": m.reverse.address, "names": list(m.reverse.names), "confirmed": m.reverse.confirmed, "failed": m.reverse.failed},
        "spf": None
        if m.spf is None
        else {
            "address": m.spf.address,
            "helo": m.spf.helo,
            "mail_from": m.spf.mail_from,
            "domain": m.spf.domain,
            "result": m.spf.result.value,
            "explanation": m.spf.explanation,
        },
        "dmarc": None
        if m.dmarc is None
        else {
            "from_domain": m.dmarc.from_domain,
            "record_domain": m.dmarc.record_domain,
            "record": m.dmarc.record.text if m.dmarc.record else None,
            "result": m.dmarc.outcome.value,
            "policy": m.dmarc.policy,
            "spf_aligned": m.dmarc.spf_aligned,
            "dkim_aligned_pass": list(m.dmarc.dkim_aligned_pass),
            "detail": m.dmarc.detail,
        },
    }


EXIT = {Verdict.PASS: 0, Verdict.FAIL: 2, Verdict.UNKNOWN: 3}
