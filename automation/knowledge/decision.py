"""Answer or hand off: a small calibrated model over the search's evidence, not one cut-off.

A single threshold on the best score cannot tell "the customer used other words" (a low
score that is still right) from "the knowledge shares two words with the question but does
not answer it" (a near miss). The decision therefore looks at several signals of the best
passage — its score, its margin over the runner-up, whether the title/heading/FAQ question
matches, whether an FAQ question is phrased like the customer's, whether the passage holds
the kind of fact asked for (a time, a price, a place), and how much of the question's weight
the knowledge base does not know at all — combined by a logistic regression.

The weights are fitted by bench/answers.py on the dev split of the bench businesses and
shipped as decision.json next to this module. How bold to be is the business's choice
(business profile `answer_confidence`): each level in LEVELS prices a wrong answer at so
many hand-offs, and its threshold on the probability is the one with the lowest cost on the
dev split at that price, stored in decision.json beside the shared weights. Because
every feature is a share or a difference of IDF-weighted shares, the same weights hold as a
business adds documents (the IDF weights move with the knowledge base). Fitting needs no
library: a few dozen Newton steps of a 10-weight logistic regression in plain Python.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from automation.knowledge.text import tokens

MODEL_FILE = Path(__file__).with_name("decision.json")
# The levels a business may choose (business profile `answer_confidence`), each with what a
# wrong answer costs in needless hand-offs (a customer misled vs. a short wait); the fit
# stores each level's cost-optimal threshold. cautious, the default, at 10 rather than 5:
# leave-one-business-out on the dev split (bench/answers.py --fit) hands off 98% of the
# unanswerable at 10 and only 94% at 5 — the target is 95% on every business. On the dev
# split the optimal threshold moves only at costs near 4.3 and 3 (the costs between give
# the same one), so balanced at 4 and bold at 2 each sit inside a band of their own.
LEVELS = {"cautious": 10.0, "balanced": 4.0, "bold": 2.0}
DEFAULT_LEVEL = "cautious"

FEATURES = ("score", "known", "margin", "focus", "qsim", "kind_fit", "kind_miss", "unknown",
            "missing", "short", "sem")

_NUM = r"(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|twelve|a few|several)"
# What kind of answer a question wants, and how a sentence that gives it looks.
ANSWER_KINDS = [
    (re.compile(r"\b(when|how long|what time|how late|how early|wann|wie lange|quand|"
                r"combien de temps|horaires?|cuando|cuanto tiempo)\b"),
     re.compile(rf"\b{_NUM}\s*(?:working |business )?(?:min|minutes?|hours?|days?|weeks?|"
                r"months?|years?|tage?n?|wochen?|stunden|monate|jours?|semaines?|dias?|"
                r"semanas?)\b|\b\d{1,2}[:.]\d{2}\b|\b\d{1,2}\s*(?:am|pm|uhr|h)\b|"
                r"\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|weekends?|"
                r"today|tomorrow|montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonntag|"
                r"lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche)\b", re.I)),
    (re.compile(r"\b(how much|price|prices|cost|costs|wie ?viel|kostet|combien|prix|cuanto|"
                r"cuesta|precio)\b"),
     re.compile(r"\d+(?:[.,]\d+)?\s*(?:€|euros?|eur|\$|usd|dollars?|dolares|£|chf|percent)\b|"
                r"[€$£]\s*\d|\bfree\b|\bno extra fee\b|\bgratis\b|\bkostenlos\b", re.I)),
    (re.compile(r"\b(where|wo|ou|donde)\b"),
     re.compile(r"\b(?:street|str(?:aße|asse)?\.?|road|rue|avenue|square|platz|stop|floor|"
                r"station|metro|u-bahn|centres?|stock)\b|\b\d{4,5}\b", re.I)),
    (re.compile(r"\b(phone|telephone|call|email|mail|contact|reach|telefon|telefonnummer|"
                r"anrufen|appeler|llamar|telefono|correo)\b"),
     re.compile(r"\+?\d[\d /-]{5,}\d|[\w.+-]+@[\w-]+\.[a-z]{2,}", re.I)),
]


def answer_kind(question: str):
    """The pattern a sentence answering this kind of question tends to contain, if any."""
    folded = " ".join(tokens(question))
    return next((want for asks, want in ANSWER_KINDS if asks.search(folded)), None)


@dataclass
class DecisionModel:
    """Logistic-regression weights per feature, a bias, and the probability to answer at per
    level (LEVELS; a level without a threshold of its own uses DEFAULT_LEVEL's).
    """

    weights: dict[str, float]
    bias: float
    thresholds: dict[str, float]
    meta: dict = field(default_factory=dict)

    @property
    def threshold(self) -> float:
        """The default level's threshold."""
        return self.thresholds[DEFAULT_LEVEL]

    def threshold_for(self, level: str | None) -> float:
        """The probability a business at this level answers from (unknown: the default's)."""
        return self.thresholds.get(level or DEFAULT_LEVEL, self.threshold)

    def probability(self, feats: dict[str, float]) -> float:
        """P(quoting the best passage answers the question correctly)."""
        z = self.bias + sum(self.weights.get(k, 0.0) * feats.get(k, 0.0) for k in FEATURES)
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def should_answer(self, feats: dict[str, float], level: str | None = None) -> bool:
        """Answer only when the probability reaches the level's cost-optimal threshold."""
        return self.probability(feats) >= self.threshold_for(level)

    def to_json(self) -> dict:
        """The model as stored in decision.json."""
        return {"features": list(FEATURES), "weights": self.weights, "bias": self.bias,
                "thresholds": self.thresholds, "meta": self.meta}


# A conservative rule for when no fitted model is available: score alone, as before, for
# every level.
FALLBACK = DecisionModel(weights={"score": 20.0}, bias=-13.0, thresholds={DEFAULT_LEVEL: 0.5},
                         meta={"source": "fallback: score >= 0.65"})
_cache: dict[str, DecisionModel] = {}


def load_model(path: Path | str | None = None) -> DecisionModel:
    """The shipped (or given) decision model, read once; the fallback rule if unreadable."""
    key = str(path or MODEL_FILE)
    if key not in _cache:
        try:
            data = json.loads(Path(key).read_text(encoding="utf-8"))
            # a file from before the levels holds one threshold: the default level's
            thresholds = data.get("thresholds") or {DEFAULT_LEVEL: data["threshold"]}
            model = DecisionModel(
                weights={k: float(v) for k, v in data["weights"].items() if k in FEATURES},
                bias=float(data["bias"]),
                thresholds={k: float(v) for k, v in thresholds.items()},
                meta=dict(data.get("meta") or {}))
            if DEFAULT_LEVEL not in model.thresholds:
                raise KeyError(DEFAULT_LEVEL)
            _cache[key] = model
        except (OSError, ValueError, KeyError, TypeError):
            _cache[key] = FALLBACK
    return _cache[key]


def features(question: str, passages: list) -> dict[str, float]:
    """The decision's inputs for answering `question` with passages[0] (see module doc)."""
    if not passages:
        return {k: 0.0 for k in FEATURES}
    best = passages[0]
    second = passages[1].score if len(passages) > 1 else 0.0
    kind = answer_kind(question)
    text = best.answer or best.text
    fit = bool(kind and kind.search(text))
    n_terms = max(1, getattr(best, "n_terms", 1))
    unknown = getattr(best, "unknown", 0.0)
    return {
        "score": best.score,
        # the score over the words the knowledge base knows at all (typos, "guys", a brand)
        "known": best.score / (1.0 - unknown) if unknown < 1.0 else 0.0,
        "margin": best.score - second,
        "focus": getattr(best, "focus", 0.0),
        "qsim": getattr(best, "qsim", 0.0),
        "kind_fit": 1.0 if fit else 0.0,
        "kind_miss": 1.0 if kind and not fit else 0.0,
        "unknown": unknown,
        "missing": getattr(best, "missing", 0.0),
        "short": 1.0 / n_terms,
        # meaning rather than words (automation.knowledge.semantic): the question's cosine
        # to the passage's embedding
        "sem": getattr(best, "sem", 0.0),
    }


# L2 penalty of the fit: leave-one-business-out on the dev split gives the same right/hand-off
# rates at 4 for every wrong-answer cost from 5 to 10 (at 0.5 they swing), so 4 transfers best.
L2 = 4.0


def fit(rows: list[dict[str, float]], labels: list[int], *, l2: float = L2,
        costs: dict[str, float] | None = None, steps: int = 60) -> DecisionModel:
    """Fit weights by Newton's method (L2-regularised), then each level's threshold.

    labels: 1 when quoting the best passage would be a right answer, else 0. costs: what a
    wrong answer costs in hand-offs, per level (default LEVELS); each level's threshold
    minimises cost × wrong answers + hand-offs of answerable questions on `rows`.
    """
    costs = costs or LEVELS
    dims = list(FEATURES)
    xs = [[1.0] + [r.get(k, 0.0) for k in dims] for r in rows]
    m = len(dims) + 1
    w = [0.0] * m
    for _ in range(steps):
        grad = [0.0] * m
        hess = [[0.0] * m for _ in range(m)]
        for x, y in zip(xs, labels, strict=False):
            z = max(-30.0, min(30.0, sum(a * b for a, b in zip(w, x, strict=False))))
            p = 1.0 / (1.0 + math.exp(-z))
            for i in range(m):
                grad[i] += (p - y) * x[i]
                for j in range(m):
                    hess[i][j] += p * (1 - p) * x[i] * x[j]
        for i in range(1, m):
            grad[i] += l2 * w[i]
            hess[i][i] += l2
        for i in range(m):
            hess[i][i] += 1e-9
        step = _solve(hess, grad)
        w = [a - b for a, b in zip(w, step, strict=False)]
        if max(abs(s) for s in step) < 1e-8:
            break
    model = DecisionModel(weights={k: round(w[i + 1], 4) for i, k in enumerate(dims)},
                          bias=round(w[0], 4), thresholds={DEFAULT_LEVEL: 0.5})
    pairs = [(model.probability(r), y) for r, y in zip(rows, labels, strict=True)]
    fitted = {level: cost_optimal_threshold(pairs, cost) for level, cost in costs.items()}
    model.thresholds = {level: t for level, (t, _cost) in fitted.items()}
    model.thresholds.setdefault(DEFAULT_LEVEL, 0.5)
    model.meta = {"rows": len(rows), "positives": int(sum(labels)), "wrong_costs": dict(costs),
                  "dev_costs": {level: c for level, (_t, c) in fitted.items()}}
    return model


def cost_optimal_threshold(pairs: list[tuple[float, int]],
                           wrong_cost: float) -> tuple[float, float]:
    """(threshold, its cost): the probability to answer from that minimises wrong_cost ×
    wrong answers + hand-offs of answerable questions over (probability, label) pairs; the
    lowest such threshold on a tie (1.01: never answer).
    """
    best_t, best_cost = 0.5, float("inf")
    for t in sorted({round(p, 4) for p, _y in pairs}) + [1.01]:
        cost = sum(wrong_cost for p, y in pairs if p >= t and y == 0) \
            + sum(1.0 for p, y in pairs if p < t and y == 1)
        if cost < best_cost - 1e-12:
            best_t, best_cost = t, cost
    return round(best_t, 4), best_cost


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Solve a·x = b by Gaussian elimination with partial pivoting (tiny systems)."""
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(m[r][c]))
        m[c], m[p] = m[p], m[c]
        if abs(m[c][c]) < 1e-12:
            continue
        for r in range(n):
            if r != c:
                f = m[r][c] / m[c][c]
                m[r] = [x - f * y for x, y in zip(m[r], m[c], strict=False)]
    return [m[i][n] / m[i][i] if abs(m[i][i]) > 1e-12 else 0.0 for i in range(n)]
