"""The semantic stage: a static embedding model shipped in a package, loaded with no network,
whose cosines rerank search and feed the answer decision.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from automation.knowledge import database, semantic
from tests.knowledge.conftest import create_doc, search

ROOT = Path(__file__).resolve().parents[2]

NO_NETWORK = """
import socket
def refuse(*args, **kwargs):
    raise OSError("network use during model load")
socket.socket.connect = refuse
socket.create_connection = refuse
from automation.knowledge import semantic
vectors = semantic.embed(["are you open on saturday", ""])
print(vectors.shape, round(float(vectors[0] @ vectors[0]), 3), float(abs(vectors[1]).sum()))
"""


def test_the_model_loads_from_the_installed_package_with_no_network():
    out = subprocess.run([sys.executable, "-c", NO_NETWORK], cwd=ROOT, capture_output=True,
                         text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1",
                              "HOME": "/nonexistent"})
    assert out.returncode == 0, out.stderr
    # one unit vector per text; a text with no token gets zeros, not NaN
    assert out.stdout.strip() == "(2, 256) 1.0 0.0"


def test_a_paraphrase_is_nearer_than_an_unrelated_passage():
    question, hours, rentals = semantic.embed([
        "are you guys open on saturday",
        "Opening hours: Monday to Friday 8:00 to 19:00, closed at weekends.",
        "We sell and repair bicycles of every brand; spare parts can be ordered."])
    assert float(question @ hours) > float(question @ rentals) + 0.2
    assert np.isclose(float(hours @ hours), 1.0, atol=1e-5)


def test_meaning_breaks_a_tie_between_passages_with_the_same_words(client, user, monkeypatch):
    h = user["headers"]
    create_doc(client, h, title="Smile care", content=(
        "Whitening brightens a tooth or the whole smile by several shades in one visit."))
    emergency = create_doc(client, h, title="Accidents", content=(
        "If a tooth is knocked out or broken in an accident, keep it in milk and come to us "
        "at once: we keep emergency slots every morning."))
    question = "my son lost a tooth playing football what do we do"
    assert search(client, h, question)[0]["document_id"] == emergency["id"]
    # on words alone both passages have "tooth" only, and the older one comes first
    monkeypatch.setattr(database, "SEMANTIC_WEIGHT", 0.0)
    assert search(client, h, question)[0]["document_id"] != emergency["id"]


def test_an_edit_re_embeds_the_edited_passage_and_keeps_the_others(app, client, user):
    h = user["headers"]
    uid = user["user"]["id"]
    kept = create_doc(client, h, title="Hours", content="We are open Monday to Friday.")
    edited = create_doc(client, h, title="Notes", content="Whitening takes one visit.")
    question = "is a knocked out tooth an emergency"

    def cosines() -> dict[str, tuple[float, float]]:
        """Per document: the search's cosine and the one computed from the passage now."""
        with app.app_context():
            hits = database.search(uid, question + " monday whitening", 5)
            direct = semantic.embed([question + " monday whitening"] + [
                " ".join(filter(None, (p.title, p.heading, p.text))) for p in hits])
            return {p.document_id: (p.sem, round(float(direct[0] @ direct[i + 1]), 4))
                    for i, p in enumerate(hits)}

    before = cosines()
    resp = client.patch(f"/api/knowledge/{edited['id']}", headers=h, json={
        "content": "A knocked out tooth is an emergency: keep it in milk and come at once."})
    assert resp.status_code == 200
    after = cosines()
    for doc in (kept["id"], edited["id"]):
        assert after[doc][0] == pytest.approx(after[doc][1], abs=1e-3)   # none is stale
    assert after[kept["id"]] == before[kept["id"]]
    assert after[edited["id"]][0] > before[edited["id"]][0] + 0.1
