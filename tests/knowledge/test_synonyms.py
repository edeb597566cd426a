"""The synonym lists are data: one maintained file per language, read at start-up."""
from __future__ import annotations

from automation.knowledge.text import PHRASES, SYNONYM_DIR, alternatives, load_synonyms


def test_every_supported_language_has_a_list_and_groups_are_interchangeable():
    assert {p.stem for p in SYNONYM_DIR.glob("*.txt")} >= {"en", "de", "fr", "es"}
    assert "store" in alternatives("shop") and "shop" in alternatives("store")
    assert PHRASES["send back"] == "return"


def test_a_list_file_is_folded_and_comments_are_ignored(tmp_path):
    (tmp_path / "de.txt").write_text(
        "# Deutsch\nÖffnungszeiten, geöffnet  # a comment\n\neinzelwort\n"
        "Geld zurück => Erstattung\n", encoding="utf-8")
    groups, phrases = load_synonyms(tmp_path)
    assert groups == {"de": [("offnungszeiten", "geoffnet")]}   # a lone word is no group
    assert phrases == {"geld zuruck": "erstattung"}
