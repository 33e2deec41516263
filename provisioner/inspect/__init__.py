"""`provision inspect`: read a received message's headers the way a postmaster does.

message (bytes -> fields) -> identity (From, Return-Path, alignment) -> authresults (RFC 8601,
trust) -> received (the hop chain) -> verify (dkimpy, pyspf, DMARC; --verify only) -> analyze
(facts and a verdict) -> report (text en/ja, JSON). The resolver, grammars and SPF walk are
provisioner.mailauth's, shared with `provision check`; nothing here imports check.
"""

from provisioner.inspect.analyze import Inspection, Trust, Verdict, inspect_message
from provisioner.inspect.message import MessageUnreadable, parse_message, read_input
from provisioner.inspect.report import EXIT, inspection_json, inspection_text

__all__ = [
    "EXIT",
    "Inspection",
    "MessageUnreadable",
    "Trust",
    "Verdict",
    "inspect_message",
    "inspection_json",
    "inspection_text",
    "parse_message",
    "read_input",
]
