"""Benchmark: how well the local provider answers from a knowledge base, and when it hands off.

    .venv/bin/python bench/answers.py                      # SQLite in a temp dir
    .venv/bin/python bench/answers.py --database-url postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/answers.py --verbose            # every question, its passage, reply
    .venv/bin/python bench/answers.py --fit                # refit decision.json on the dev split

It builds an app on a fresh database, imports every business of bench/data (one user each,
through the same importer as the API and the CLI), asks each business's questions
(bench/data/<name>_questions.csv: `expected` is one or more phrases, separated by " | ", that
the reply must contain, or `handoff`) through generate_reply (AI_PROVIDER=local), and prints,
per business, split and answer-confidence level (the business profile's `answer_confidence`:
cautious, balanced, bold), the confusion table: answered right, answered wrong (an unanswerable
question answered, or a reply without the expected phrase), handed off (right), wrongly handed
off (an answerable question). `rows()` (the `make bench` table) reports the default level.

Each question's split is fixed by a hash of its text (dev or test, about half each). --fit
refits the decision model on the dev questions of every business and stores it in
automation/knowledge/decision.json, with each level's cost-optimal threshold; the test split
is never used for fitting.

Then it times the decision (search + features + model + reply) with 500 documents in one
knowledge base, and prints p50/p99 next to the search alone as the baseline of the same run.
Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and the app importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from automation.knowledge.decision import DEFAULT_LEVEL  # noqa: E402
from bench.common import (  # noqa: E402
    FERNET_KEY,
    JWT_SECRET_KEY,
    SECRET_KEY,
    database,
    percentile,
    print_table,
    temp_workdir,
)

DATA = Path(__file__).resolve().parent / "data"
BUSINESSES = {
    "velo_verde": {"name": "Velo Verde", "language": "en"},
    "lindenhof_dental": {"name": "Zahnarztpraxis Lindenhof", "language": "de"},
    "tallybook": {"name": "Tallybook", "language": "en"},
    "bouchon_canuts": {"name": "Le Bouchon des Canuts", "language": "fr"},
}
HANDOFF_TEXT = "A member of our team will reply here soon."
TIMED_DOCUMENTS = 500


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL server URL on 127.0.0.1 (a fresh database is created on it "
        "and dropped afterwards); default: SQLite in a temp dir",
    )
    p.add_argument(
        "--fit",
        action="store_true",
        help="refit automation/knowledge/decision.json on the dev split first",
    )
    p.add_argument("--no-timing", action="store_true", help="skip the 500-document timing")
    p.add_argument("--verbose", action="store_true", help="print every question's result")
    p.add_argument(
        "--split",
        default=None,
        choices=["dev", "test"],
        help="with --verbose: print only this split",
    )
    return p.parse_args(argv)


def _norm(text: str) -> str:
    from automation.knowledge.text import fold

    return " ".join(fold(text or "").replace("’", "'").split())


def split_of(question: str) -> str:
    """Dev or test, fixed by the question's text (so adding questions moves none)."""
    return "dev" if hashlib.sha256(question.encode("utf-8")).digest()[0] % 2 == 0 else "test"


def load_questions(name: str) -> list[dict]:
    """A business's questions with their expected phrases, answerability and split."""
    with open(DATA / f"{name}_questions.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        row["business"] = name
        row["answerable"] = row["expected"].strip().lower() != "handoff"
        row["phrases"] = (
            [p.strip() for p in row["expected"].split("|") if p.strip()]
            if row["answerable"]
            else []
        )
        row["split"] = split_of(row["question"])
        row.setdefault("kind", "")
    return rows


def build(workdir: Path, database_url: str):
    """An app on a fresh, migrated database."""
    from app import create_app, upgrade_database
    from utils.config import load_settings

    settings = load_settings(
        _env_file=None,
        DANA_ENV="test",
        DATABASE_URL=database_url,
        INSTANCE_PATH=str(workdir / "instance"),
        SECRET_KEY=SECRET_KEY,
        JWT_SECRET_KEY=JWT_SECRET_KEY,
        ENCRYPTION_KEYS=FERNET_KEY,
        AI_PROVIDER="local",
        OPENAI_API_KEY=None,
        REDIS_URL=None,
        LOG_LEVEL="WARNING",
    )
    app = create_app(settings)
    upgrade_database(app)
    return app


def kb_items(name: str) -> list[dict]:
    """A business's knowledge files parsed into document items (as the import does)."""
    from automation.knowledge import parse_file

    items = []
    for path in sorted((DATA / name).iterdir()):
        if path.is_file():
            items.extend(parse_file(path.name, path.read_bytes()))
    return items


def new_user(email: str, name: str) -> str:
    """A user in the bench database; returns its id."""
    from models_db import User, db

    user = User(email=email, name=name)
    user.set_password("correct horse battery staple")
    db.session.add(user)
    db.session.commit()
    return user.id


def judge(row: dict, answer) -> str:
    """Right | wrong | handoff | missed (wrongly handed off)."""
    if answer.handoff:
        return "missed" if row["answerable"] else "handoff"
    if not row["answerable"]:
        return "wrong"
    text = _norm(answer.text)
    return "right" if all(_norm(p) in text for p in row["phrases"]) else "wrong"


def ask(user_id: str, business: dict, rows: list[dict]) -> None:
    """Ask every question at every answer-confidence level; record the decision's features,
    and each level's reply and verdict (r["answers"], r["verdicts"], keyed by level).
    """
    from automation.ai.providers.local import prefer, reply_language
    from automation.ai.response_generator import ReplyContext, generate_reply
    from automation.knowledge import search
    from automation.knowledge.decision import LEVELS, features

    biz = {
        "name": business["name"],
        "persona": "",
        "instructions": "",
        "handoff_message": HANDOFF_TEXT,
        "language": business["language"],
    }
    for r in rows:
        ctx = ReplyContext(
            user_id=user_id,
            business=biz,
            conversation_id=None,
            message_text=r["question"],
            history=[],
            contact_name=None,
            platform="facebook",
        )
        passages = prefer(r["question"], search(user_id, r["question"], 5), reply_language(ctx))
        r["features"] = features(r["question"], passages)
        best = passages[0] if passages else None
        r["best"] = (best.heading or best.title) if best else "-"
        body = _norm(best.answer or best.text) if best else ""
        r["label"] = int(
            bool(best and r["answerable"] and all(_norm(p) in body for p in r["phrases"]))
        )
        r["answers"], r["verdicts"] = {}, {}
        for level in LEVELS:
            ctx.business = {**biz, "answer_confidence": level}
            r["answers"][level] = generate_reply(ctx)
            r["verdicts"][level] = judge(r, r["answers"][level])


def confusion(rows: list[dict], level: str = DEFAULT_LEVEL) -> list[str]:
    """One table row: counts and the two target rates, at an answer-confidence level."""
    def verdict(r: dict) -> str:
        return r["verdicts"][level]

    c = {k: sum(verdict(r) == k for r in rows) for k in ("right", "wrong", "handoff", "missed")}
    answerable = sum(r["answerable"] for r in rows)
    unanswerable = len(rows) - answerable
    wrong_on_unanswerable = sum(verdict(r) == "wrong" and not r["answerable"] for r in rows)
    right_rate = c["right"] / answerable if answerable else float("nan")
    handoff_rate = c["handoff"] / unanswerable if unanswerable else float("nan")
    return [
        str(len(rows)),
        str(c["right"]),
        str(c["wrong"] - wrong_on_unanswerable),
        str(wrong_on_unanswerable),
        str(c["handoff"]),
        str(c["missed"]),
        f"{right_rate:.0%}",
        f"{handoff_rate:.0%}",
    ]


def cross_validate(dev: list[dict]) -> list[list[str]]:
    """Leave one business out, on the dev split only: fit on the other businesses' dev
    questions, decide this business's. How the decision fares on a business it has never
    seen (what a new customer of Dana gets), without looking at the test split.
    """
    from automation.knowledge.decision import LEVELS, fit

    out = []
    for name in BUSINESSES:
        train = [r for r in dev if r["business"] != name]
        held = [r for r in dev if r["business"] == name]
        model = fit([r["features"] for r in train], [r["label"] for r in train])
        for level in LEVELS:
            answered = [model.should_answer(r["features"], level) for r in held]
            answerable = [r for r in held if r["answerable"]]
            pairs = list(zip(answered, held, strict=True))
            right = sum(bool(a and r["answerable"] and r["label"]) for a, r in pairs)
            handed = sum(bool(not a and not r["answerable"]) for a, r in pairs)
            unanswerable = len(held) - len(answerable)
            out.append([name, level, str(len(held)), f"{right / max(1, len(answerable)):.0%}",
                        f"{handed / max(1, unanswerable):.0%}"])
    return out


def refit(rows: list[dict]) -> None:
    """Fit the decision model on the dev split and store it with the knowledge package."""
    from automation.knowledge.decision import MODEL_FILE, _cache, fit

    dev = [r for r in rows if r["split"] == "dev"]
    print("leave-one-business-out on the dev split (fit on the other three, decide this one):")
    print_table(["held-out business", "level", "dev questions", "right / answerable (label)",
                 "handed off / unanswerable"], cross_validate(dev))
    print()
    model = fit([r["features"] for r in dev], [r["label"] for r in dev])
    model.meta["fitted_on"] = "bench/data dev split: " + ", ".join(BUSINESSES)
    MODEL_FILE.write_text(json.dumps(model.to_json(), indent=2) + "\n", encoding="utf-8")
    _cache.clear()
    print(
        f"fitted {MODEL_FILE.name} on {len(dev)} dev questions: thresholds "
        f"{model.thresholds} (wrong-answer costs {model.meta['wrong_costs']}), weights "
        f"{model.weights}, bias {model.bias}\n"
    )


def filler_documents(count: int, seed: int = 7) -> list[dict]:
    """`count` made-up documents from shuffled sentences of every bench knowledge base."""
    from automation.knowledge.text import sentences

    pool = []
    for name in BUSINESSES:
        for item in kb_items(name):
            pool.extend(s for s in sentences(item["content"]) if len(s) > 30)
    rnd = random.Random(seed)
    return [
        {
            "title": f"Notes {i}: " + " ".join(rnd.choice(pool).split()[:4]),
            "content": "\n\n".join(" ".join(rnd.sample(pool, 4)) for _ in range(3)),
            "format": "text",
        }
        for i in range(count)
    ]


def time_decision(rows: list[dict]) -> list[list[str]]:
    """p50/p99 of search alone and of generate_reply with TIMED_DOCUMENTS documents."""
    from automation.ai.response_generator import ReplyContext, generate_reply
    from automation.knowledge import search
    from automation.knowledge.database import _new_document
    from automation.knowledge.decision import features, load_model
    from models_db import db

    user_id = new_user("timing@example.com", "Timing")
    items = [i for name in BUSINESSES for i in kb_items(name)]
    items += filler_documents(TIMED_DOCUMENTS - len(items))
    for item in items:
        _new_document(user_id, item)
    db.session.commit()
    biz = {"name": "Timing", "handoff_message": HANDOFF_TEXT, "language": "en"}
    searched, decided, modelled = [], [], []
    model = load_model()
    for r in rows * 2:
        t0 = time.perf_counter()
        hits = search(user_id, r["question"], 5)
        searched.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        model.should_answer(features(r["question"], hits))
        modelled.append(time.perf_counter() - t0)
        ctx = ReplyContext(
            user_id=user_id,
            business=biz,
            conversation_id=None,
            message_text=r["question"],
            history=[],
            contact_name=None,
            platform="facebook",
        )
        t0 = time.perf_counter()
        generate_reply(ctx)
        decided.append(time.perf_counter() - t0)
    return {"search": searched, "model": modelled, "decision": decided}


def timing_table(samples: dict[str, list[float]]) -> list[list[str]]:
    """p50/p99 of each timed stage, and its p99 as a ratio to search alone's."""
    base = percentile(samples["search"], 99)
    names = {"search": "search only (baseline)", "model": "features + model only",
             "decision": "decision (generate_reply)"}
    return [[label, str(len(samples[key])), f"{percentile(samples[key], 50) * 1000:.1f}",
             f"{percentile(samples[key], 99) * 1000:.1f}",
             f"{percentile(samples[key], 99) / base:.2f}"] for key, label in names.items()]


def baseline_rates(rows: list[dict], model=None, level: str | None = None) -> tuple[float, float]:
    """A decision rule on the same questions — by default the old one (answer when the best
    score reaches 0.65, the decision's FALLBACK): (share of the answerable answered from the
    right passage, share of the unanswerable handed off). Judged on the best passage, as the
    fit's labels are (the reply itself is not composed).
    """
    from automation.knowledge.decision import FALLBACK

    model = model or FALLBACK
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    right = sum(bool(model.should_answer(r["features"], level) and r["label"])
                for r in answerable)
    handed = sum(not model.should_answer(r["features"], level) for r in unanswerable)
    return right / max(1, len(answerable)), handed / max(1, len(unanswerable))


def measure(database_url: str | None, *, refit_first: bool = False,
            timed: bool = True) -> dict:
    """Import every business, ask every question (refitting first if asked), time the
    decision with TIMED_DOCUMENTS documents; the raw results for printing or rows().
    """
    rows_by = {name: load_questions(name) for name in BUSINESSES}
    every = [r for rows in rows_by.values() for r in rows]
    timing = None
    with (
        temp_workdir("dana-bench-answers-") as workdir,
        database(workdir, database_url) as url,
    ):
        app = build(workdir, url)
        with app.app_context():
            from automation.knowledge import create_documents
            from models_db import db

            sizes = {}
            for name, biz in BUSINESSES.items():
                uid = new_user(f"{name}@example.com", biz["name"])
                created = create_documents(uid, kb_items(name))
                sizes[name] = (len(created), sum(d["chunk_count"] for d in created), uid)
            for name, biz in BUSINESSES.items():
                ask(sizes[name][2], biz, rows_by[name])
            if refit_first:
                refit(every)
                for name, biz in BUSINESSES.items():
                    ask(sizes[name][2], biz, rows_by[name])
            if timed:
                timing = time_decision(every)
            dialect = db.engine.dialect.name
            db.session.remove()
            db.engine.dispose()
    return {"rows_by": rows_by, "every": every, "sizes": sizes, "timing": timing,
            "dialect": dialect}


def _rate(rows: list[dict], answerable: bool) -> float:
    """Answered right of the answerable, or handed off of the unanswerable (0..1)."""
    pool = [r for r in rows if r["answerable"] == answerable]
    good = "right" if answerable else "handoff"
    return sum(r["verdicts"][DEFAULT_LEVEL] == good for r in pool) / max(1, len(pool))


def rows(database_url: str) -> list[dict]:
    """The test-split figures and the decision's p99 as rows for the `make bench` table.

    Each row: figure, dana, baseline, unit, ratio, goal, passed. The quality baseline is the
    old fixed rule (best score >= 0.65) on the same questions; the time baseline is search
    alone, measured in the same run.
    """
    result = measure(database_url)
    out = []
    for name in [*BUSINESSES, None]:
        pool = [r for r in (result["rows_by"][name] if name else result["every"])
                if r["split"] == "test"]
        base_right, base_handed = baseline_rates(pool)
        for figure, answerable, base, goal in (
                ("answered right / answerable", True, base_right, 0.90),
                ("handed off / unanswerable", False, base_handed, 0.95)):
            dana = _rate(pool, answerable)
            out.append({"figure": f"answers, test split, {name or 'all businesses'}: {figure}",
                        "dana": round(dana * 100, 1), "baseline": round(base * 100, 1),
                        "unit": "%", "ratio": round(dana / base, 2) if base else None,
                        "goal": f">= {goal:.0%}", "passed": dana >= goal})
    samples = result["timing"]
    p99 = percentile(samples["decision"], 99) * 1000
    base = percentile(samples["search"], 99) * 1000
    out.append({"figure": f"answer decision p99, {TIMED_DOCUMENTS} documents",
                "dana": round(p99, 1), "baseline": round(base, 1), "unit": "ms",
                "ratio": round(p99 / base, 2) if base else None, "goal": "<= 20 ms",
                "passed": p99 <= 20.0})
    return out


def main(argv=None) -> int:
    """Run the benchmark (see the module docstring)."""
    args = parse_args(argv)
    result = measure(args.database_url, refit_first=args.fit, timed=not args.no_timing)
    rows_by, every, sizes, dialect = (result[k] for k in ("rows_by", "every", "sizes",
                                                           "dialect"))
    timing = result["timing"] and timing_table(result["timing"])
    from automation.knowledge.decision import LEVELS, load_model

    model = load_model()
    print(
        f"database: {dialect}; decision model: thresholds "
        + ", ".join(f"{lv} {model.threshold_for(lv)} (a wrong answer costs {cost:g} hand-offs)"
                    for lv, cost in LEVELS.items())
        + f"; default {DEFAULT_LEVEL} "
        f"({model.meta.get('fitted_on') or model.meta.get('source', '')})\n"
    )
    if args.verbose:
        shown = [r for r in every if not args.split or r["split"] == args.split]
        print_table(
            ["business", "split", "question", "expected", "p", "verdict", "best passage", "reply"],
            [
                [
                    r["business"][:10],
                    r["split"],
                    r["question"][:46],
                    r["expected"][:20],
                    f"{load_model().probability(r['features']):.2f}",
                    r["verdicts"][DEFAULT_LEVEL],
                    r["best"][:24],
                    "handoff"
                    if r["answers"][DEFAULT_LEVEL].handoff
                    else (r["answers"][DEFAULT_LEVEL].text or "")[:50].replace("\n", " "),
                ]
                for r in shown
            ],
        )
        print()
    table = []
    for level in LEVELS:
        for name in BUSINESSES:
            docs, chunks, _uid = sizes[name]
            for split in ("dev", "test"):
                rows = [r for r in rows_by[name] if r["split"] == split]
                table.append([level, f"{name} ({docs} docs, {chunks} passages)", split]
                             + confusion(rows, level))
        for split in ("dev", "test"):
            rows = [r for r in every if r["split"] == split]
            table.append([level, "all businesses", split] + confusion(rows, level))
    print_table(
        [
            "level",
            "business",
            "split",
            "questions",
            "answered right",
            "answered wrong",
            "answered unanswerable",
            "handed off (right)",
            "wrongly handed off",
            "right / answerable",
            "handed off / unanswerable",
        ],
        table,
    )
    print("\nbaseline: the old fixed rule (answer when the best score >= 0.65) against the "
          "fitted model, both judged on the best passage (no reply composed), same questions:")
    print_table(["rule", "split", "right / answerable", "handed off / unanswerable"],
                [[label, split, *(f"{x:.0%}" for x in baseline_rates(
                    [r for r in every if r["split"] == split], rule, level))]
                 for label, rule, level in (("score >= 0.65", None, None),
                                            *((f"fitted model, {lv}", model, lv)
                                              for lv in LEVELS))
                 for split in ("dev", "test")])
    if timing:
        print(f"\ndecision time with {TIMED_DOCUMENTS} documents in one knowledge base, ms:")
        print_table(["what", "runs", "p50", "p99", "p99 ratio to search"], timing)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
