"""Mail authentication shared by `provision check` (what we publish) and `provision inspect`
(what a received message carries): the DNS questions, the record grammars, the SPF walk.

resolver.py asks DNS through an injectable `Resolver` and returns typed `Answer`s (never raises);
grammar.py parses SPF terms, DKIM and DMARC tag lists, MX values and DNSBL codes (no DNS);
spf.py walks include/redirect with RFC 7208's limits and runs pyspf's check_host on our resolver.

Nothing here imports check, inspect, render or dns (tests/test_layers.py): `provision inspect`
loads only what it asks, and this package imports nothing on import.
"""
