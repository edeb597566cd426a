"""Importing .md/.txt/.csv files: through the API and through `flask knowledge import`."""
from __future__ import annotations

import pytest

from tests.knowledge.conftest import create_doc, search, upload

MARKDOWN = """# Bakery handbook

Welcome to our bakery.

## Opening hours

Monday to Saturday, 7 am to 6 pm.

### Holidays

Closed on public holidays.

## Custom cakes

Order custom cakes at least three days ahead.

```
## not a heading (inside a code fence)
```
"""

CSV = """question,answer
Do you bake gluten-free bread?,"Yes, every Friday."
"Can I pay by card?","Yes, all major cards, and ""contactless"" too."
"""


def test_markdown_is_split_by_second_level_headings(client, user):
    resp = upload(client, user["headers"], "handbook.md", MARKDOWN, tags="bakery, imported")
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["created"] == 3
    titles = [d["title"] for d in body["items"]]
    assert titles == ["Bakery handbook", "Opening hours", "Custom cakes"]
    assert all(d["format"] == "markdown" and d["source"] == "import:handbook.md"
               and d["tags"] == ["bakery", "imported"] for d in body["items"])
    hours = next(d for d in body["items"] if d["title"] == "Opening hours")
    full = client.get(f"/api/knowledge/{hours['id']}", headers=user["headers"]).get_json()
    assert "### Holidays" in full["content"]  # deeper headings stay inside the document
    cakes = next(d for d in body["items"] if d["title"] == "Custom cakes")
    cake_doc = client.get(f"/api/knowledge/{cakes['id']}", headers=user["headers"]).get_json()
    assert "not a heading" in cake_doc["content"]
    hit = search(client, user["headers"], "closed on holidays?")[0]
    assert hit["document_id"] == hours["id"] and hit["heading"] == "Holidays"


SETEXT = """Bakery handbook
===============

Welcome to our bakery.

Opening hours
-------------

Monday to Saturday, 7 am to 6 pm.

### Holidays

Closed on public holidays.

Custom cakes
------------

Order custom cakes at least three days ahead.

---

- a list item
---

```
Not a title
-----------
```
"""


def test_markdown_setext_headings_split_like_atx_ones(client, user):
    resp = upload(client, user["headers"], "handbook.md", SETEXT)
    assert resp.status_code == 201, resp.get_json()
    items = resp.get_json()["items"]
    assert [d["title"] for d in items] == ["Bakery handbook", "Opening hours", "Custom cakes"]
    cakes = client.get(f"/api/knowledge/{items[2]['id']}", headers=user["headers"]).get_json()
    # A rule after a blank line, a list item and fenced text are not headings.
    assert "\n---\n" in cakes["content"] and "- a list item\n---" in cakes["content"]
    assert "Not a title\n-----------" in cakes["content"]
    hit = search(client, user["headers"], "closed on holidays?")[0]
    assert hit["document_id"] == items[1]["id"] and hit["heading"] == "Holidays"


def test_setext_sub_headings_are_passage_headings(client, user):
    resp = upload(client, user["headers"], "faq.md",
                  "# Shop\n\nDelivery\n--------\n\nWe deliver to Oslo within two days.\n")
    assert resp.status_code == 201, resp.get_json()
    hit = search(client, user["headers"], "deliver to Oslo?")[0]
    assert hit["heading"] == "Delivery"


def test_markdown_without_sections_is_one_document(client, user):
    resp = upload(client, user["headers"], "notes.markdown", "# Our story\n\nFounded in 1990.\n")
    assert resp.status_code == 201
    assert [d["title"] for d in resp.get_json()["items"]] == ["Our story"]


def test_text_file_is_one_document(client, user):
    resp = upload(client, user["headers"], "delivery-area_2024.txt",
                  "We deliver within 10 km.\n\nDelivery is free above 30 euros.\n")
    assert resp.status_code == 201
    [doc] = resp.get_json()["items"]
    assert doc["title"] == "Delivery area 2024" and doc["format"] == "text"
    assert search(client, user["headers"], "how far do you deliver")[0]["document_id"] == doc["id"]


def test_csv_is_one_faq_document_with_a_passage_per_row(client, user):
    resp = upload(client, user["headers"], "faq.csv", CSV)
    assert resp.status_code == 201, resp.get_json()
    [doc] = resp.get_json()["items"]
    assert doc["format"] == "faq" and doc["chunk_count"] == 2 and doc["title"] == "Faq"
    top = search(client, user["headers"], "pay with a credit card")[0]
    assert top["question"] == "Can I pay by card?"
    assert top["answer"] == 'Yes, all major cards, and "contactless" too.'


def test_csv_with_semicolons_and_bom(client, user):
    data = "\ufeffQuestion;Answer\nOpen on Sunday?;No, closed.\n".encode()
    resp = upload(client, user["headers"], "export.csv", data)
    assert resp.status_code == 201 and resp.get_json()["items"][0]["chunk_count"] == 1


@pytest.mark.parametrize("content,needle", [
    ("question,answer\nok?,yes\n\"unterminated,answer\n", "line 3"),
    ("question,answer\nok?,yes\nthree,fields,here\n", "line 3"),
    ("question,answer\nok?,yes\nno answer,\n", "line 3: the answer is empty"),
    ("q,a\nok?,yes\n", "line 1"),
    ('question,answer\n"bad"quote,x\n', "line 2"),
])
def test_malformed_csv_is_400_naming_the_line(client, user, content, needle):
    resp = upload(client, user["headers"], "faq.csv", content)
    assert resp.status_code == 400, resp.get_json()
    err = resp.get_json()["error"]
    assert err["code"] == "invalid_import" and needle in err["message"], err
    assert client.get("/api/knowledge", headers=user["headers"]).get_json()["items"] == []


@pytest.mark.parametrize("filename,data,code", [
    ("manual.pdf", b"%PDF-1.4", "unsupported_file_type"),
    ("noext", b"hello", "unsupported_file_type"),
    ("empty.txt", b"   \n", "invalid_import"),
    ("latin1.txt", "caf\u00e9".encode("latin-1"), "invalid_import"),
    ("binary.md", b"\x00\x01\x02", "invalid_import"),
])
def test_bad_files_are_400(client, user, filename, data, code):
    resp = upload(client, user["headers"], filename, data)
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == code


def test_import_needs_a_file(client, user):
    resp = client.post("/api/knowledge/import", headers=user["headers"], data={},
                       content_type="multipart/form-data")
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "file_required"


def test_import_is_gated_by_the_plan_for_every_document(client, user):
    h = user["headers"]
    for i in range(18):
        create_doc(client, h, title=f"Doc {i}", content="x")
    resp = upload(client, h, "handbook.md", MARKDOWN)  # 3 documents: 18 + 3 > 20
    assert resp.status_code == 402 and resp.get_json()["error"]["code"] == "plan_limit"
    assert len(client.get("/api/knowledge?limit=100", headers=h).get_json()["items"]) == 18
    assert upload(client, h, "faq.csv", CSV).status_code == 201  # 1 document still fits


# --------------------------------------------------------------------------- CLI

def test_cli_imports_a_folder(app, client, user, tmp_path):
    folder = tmp_path / "kb"
    (folder / "sub").mkdir(parents=True)
    (folder / "handbook.md").write_text(MARKDOWN)
    (folder / "sub" / "faq.csv").write_text(CSV)
    (folder / "notes.txt").write_text("Parking is free.")
    (folder / "ignored.pdf").write_bytes(b"%PDF")
    result = app.test_cli_runner().invoke(args=[
        "knowledge", "import", str(folder), "--user", user["user"]["email"].upper(),
        "--tag", "cli"])
    assert result.exit_code == 0, result.output
    assert "Imported 5 document(s)" in result.output
    items = client.get("/api/knowledge?limit=100", headers=user["headers"]).get_json()["items"]
    assert len(items) == 5 and all(d["tags"] == ["cli"] for d in items)
    assert search(client, user["headers"], "gluten-free bread")[0]["answer"] == "Yes, every Friday."


def test_cli_imports_one_file(app, client, user, tmp_path):
    path = tmp_path / "faq.csv"
    path.write_text(CSV)
    result = app.test_cli_runner().invoke(args=["knowledge", "import", str(path),
                                                "--user", user["user"]["email"]])
    assert result.exit_code == 0, result.output
    assert "Imported 1 document(s) with 2 passage(s)" in result.output


def test_cli_imports_nothing_when_one_file_is_malformed(app, client, user, tmp_path):
    (tmp_path / "good.txt").write_text("fine")
    (tmp_path / "bad.csv").write_text("question,answer\nonly a question,\n")
    result = app.test_cli_runner().invoke(args=["knowledge", "import", str(tmp_path),
                                                "--user", user["user"]["email"]])
    assert result.exit_code != 0
    assert "bad.csv, line 2" in result.output
    assert client.get("/api/knowledge", headers=user["headers"]).get_json()["items"] == []


def test_cli_refuses_unknown_users_and_plan_overflow(app, client, user, tmp_path):
    (tmp_path / "a.txt").write_text("x")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["knowledge", "import", str(tmp_path), "--user", "nobody@x.io"])
    assert result.exit_code != 0 and "No account" in result.output
    for i in range(21):
        (tmp_path / f"doc{i}.txt").write_text(f"document {i}")
    result = runner.invoke(args=["knowledge", "import", str(tmp_path),
                                 "--user", user["user"]["email"]])
    assert result.exit_code != 0 and "20 knowledge documents" in result.output
    assert client.get("/api/knowledge", headers=user["headers"]).get_json()["items"] == []
