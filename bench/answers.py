"""Benchmark: how well the local provider answers from a knowledge base, and when it hands off.

    .venv/bin/python bench/answers.py                      # SQLite in a temp dir
    .venv/bin/python bench/answers.py --database-url postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/answers.py --verbose            # every question, its passage, score

It builds an app on a fresh database (with --database-url, a new database on that
PostgreSQL server, dropped at the end), imports bench/data/velo_verde (markdown, CSV and text,
through the same importer as the API and the CLI), asks every question of
bench/data/velo_verde_questions.csv and prints:

* top-1 retrieval accuracy on the answerable questions (the best passage holds the answer),
* per threshold: the answer rate and the correct-answer rate on the answerable questions,
  wrong answers, and hand-off precision/recall (a hand-off is right on the unanswerable ones),
* what generate_reply (AI_PROVIDER=local) does at the provider's ANSWER_THRESHOLD.

Only 127.0.0.1 is contacted. Nothing is timed: this measures quality, not speed.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and the app importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (FERNET_KEY, JWT_SECRET_KEY, SECRET_KEY, database,  # noqa: E402
                          print_table, temp_workdir)

DATA = Path(__file__).resolve().parent / "data"
KB_DIR = DATA / "velo_verde"
QUESTIONS = DATA / "velo_verde_questions.csv"
BUSINESS = {"name": "Velo Verde", "persona": "", "instructions": "",
            "handoff_message": "A member of our team will reply here soon.", "language": "en"}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url", default=None,
                   help="PostgreSQL server URL on 127.0.0.1 (a fresh database is created on it "
                        "and dropped afterwards); default: SQLite in a temp dir")
    p.add_argument("--thresholds", default="0.55,0.65,0.75",
                   help="comma-separated thresholds to compare (default 0.55,0.65,0.75)")
    p.add_argument("--verbose", action="store_true", help="print every question's result")
    return p.parse_args(argv)


def _norm(text: str) -> str:
    return " ".join((text or "").lower().split())


def load_questions() -> list[dict]:
    with open(QUESTIONS, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        row["answerable"] = row["expected"].strip().lower() != "handoff"
    return rows


def build(workdir: Path, database_url: str):
    """An app on a fresh, migrated database, with one user owning the imported KB."""
    from app import create_app, upgrade_database
    from utils.config import load_settings

    settings = load_settings(
        _env_file=None, DANA_ENV="test", DATABASE_URL=database_url,
        INSTANCE_PATH=str(workdir / "instance"), SECRET_KEY=SECRET_KEY,
        JWT_SECRET_KEY=JWT_SECRET_KEY, ENCRYPTION_KEYS=FERNET_KEY, AI_PROVIDER="local",
        OPENAI_API_KEY=None, REDIS_URL=None, LOG_LEVEL="WARNING")
    app = create_app(settings)
    upgrade_database(app)
    return app


def import_kb(user_id: str) -> tuple[int, int]:
    from automation.knowledge import create_documents, parse_file

    items = []
    for path in sorted(KB_DIR.iterdir()):
        if path.is_file():
            items.extend(parse_file(path.name, path.read_bytes()))
    created = create_documents(user_id, items)
    return len(created), sum(d["chunk_count"] for d in created)


def evaluate(rows: list[dict], thresholds: list[float]) -> list[list[str]]:
    """One table row per threshold from the questions' best passages."""
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    out = []
    for t in thresholds:
        answered = lambda r: r["best_score"] >= t and not r["human"]  # noqa: E731
        ans_rate = sum(answered(r) for r in answerable) / len(answerable)
        correct = sum(answered(r) and r["top1"] for r in answerable) / len(answerable)
        wrong = sum(answered(r) and not r["top1"] for r in answerable) \
            + sum(answered(r) for r in unanswerable)
        handoffs = [r for r in rows if not answered(r)]
        right_handoffs = sum(not r["answerable"] for r in handoffs)
        precision = right_handoffs / len(handoffs) if handoffs else float("nan")
        recall = right_handoffs / len(unanswerable)
        out.append([f"{t:.2f}", f"{ans_rate:.0%}", f"{correct:.0%}", str(wrong),
                    f"{precision:.0%}", f"{recall:.0%}"])
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    thresholds = [float(x) for x in args.thresholds.split(",") if x.strip()]
    rows = load_questions()
    with temp_workdir("dana-bench-answers-") as workdir, \
            database(workdir, args.database_url) as url:
        app = build(workdir, url)
        with app.app_context():
            from automation.ai.providers.local import ANSWER_THRESHOLD
            from automation.ai.response_generator import (ReplyContext, detect_intent,
                                                          generate_reply)
            from automation.knowledge import search
            from models_db import User, db

            user = User(email="bench@example.com", name="Velo Verde")
            user.set_password("correct horse battery staple")
            db.session.add(user)
            db.session.commit()
            docs, chunks = import_kb(user.id)

            for r in rows:
                passages = search(user.id, r["question"], 5)
                best = passages[0] if passages else None
                r["best_score"] = best.score if best else 0.0
                r["best_title"] = (best.heading or best.title) if best else "-"
                r["top1"] = bool(best and r["answerable"]
                                 and _norm(r["expected"]) in _norm(best.text))
                r["human"] = detect_intent(r["question"]) == "human_request"
                ctx = ReplyContext(user_id=user.id, business=BUSINESS, conversation_id=None,
                                   message_text=r["question"], history=[], contact_name=None,
                                   platform="facebook")
                r["answer"] = generate_reply(ctx)
            dialect = db.engine.dialect.name
            db.session.remove()
            db.engine.dispose()

    answerable = [r for r in rows if r["answerable"]]
    print(f"knowledge base: {docs} documents, {chunks} passages ({dialect}); "
          f"{len(rows)} questions, {len(answerable)} answerable, "
          f"{len(rows) - len(answerable)} for a human")
    if args.verbose:
        print()
        print_table(["question", "expected", "score", "top-1", "best passage", "reply"], [
            [r["question"][:48], r["expected"][:24], f"{r['best_score']:.2f}",
             "ok" if r["top1"] else ("-" if not r["answerable"] else "MISS"),
             r["best_title"][:30],
             "handoff" if r["answer"].handoff else (r["answer"].text or "")[:40]]
            for r in rows])
    top1 = sum(r["top1"] for r in answerable) / len(answerable)
    print(f"\ntop-1 retrieval accuracy (answerable): {top1:.0%} "
          f"({sum(r['top1'] for r in answerable)}/{len(answerable)})\n")
    print_table(["threshold", "answer rate", "correct answers", "wrong answers",
                 "handoff precision", "handoff recall"], evaluate(rows, thresholds))

    # What generate_reply really does at the provider's threshold (templates, intents incl.)
    live_ans = [r for r in answerable if not r["answer"].handoff]
    live_ok = [r for r in live_ans if r["answer"].sources and r["top1"]]
    live_wrong = len(live_ans) - len(live_ok) + sum(
        not r["answer"].handoff for r in rows if not r["answerable"])
    handed = [r for r in rows if r["answer"].handoff]
    prec = sum(not r["answerable"] for r in handed) / len(handed) if handed else float("nan")
    rec = sum(r["answer"].handoff for r in rows if not r["answerable"]) / \
        (len(rows) - len(answerable))
    print(f"\ngenerate_reply at ANSWER_THRESHOLD={ANSWER_THRESHOLD}: answered "
          f"{len(live_ans)}/{len(answerable)} answerable ({len(live_ok)} correct), "
          f"{live_wrong} wrong answer(s), handoff precision {prec:.0%}, recall {rec:.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
