"""inspect/text.py: the sentence catalogue, English and Japanese."""

from __future__ import annotations

from provisioner.inspect.text import CATALOGUE


def test_every_sentence_has_both_languages_and_the_same_placeholders() -> None:
    import string

    for key, (en, ja) in CATALOGUE.items():
        names = {f for _, f, _, _ in string.Formatter().parse(en) if f}
        assert ja.strip() and names - {"domain_hint"} == {f for _, f, _, _ in string.Formatter().parse(ja) if f} - {"domain_hint"}, key
