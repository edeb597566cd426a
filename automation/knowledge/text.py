"""Text normalisation shared by indexing, searching and answering.

Both full-text engines (SQLite FTS5, PostgreSQL tsvector) index the *same* pre-normalised
token stream built here (lower case, diacritics removed, letters and digits only), so the two
databases see identical tokens and the Python reranker can score candidates the same way on
both. Stemming is deliberately light ("stem-lite"): a stem is a prefix of the word's
surface forms (ship ← ships, shipped, shipping), so an FTS prefix query finds every form.
"""
from __future__ import annotations

import functools
import math
import re
import threading
import unicodedata
from itertools import repeat
from pathlib import Path

import snowballstemmer

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)

# Function words, chat filler and question frames ("how long", "what time", "somewhere
# else") in the languages Dana's customers write most (en, de, fr, es). They are never
# searched for and carry no weight in a match; documents are still indexed with them.
STOPWORDS = frozenset("""
a an the and or but if of at by for with about against between into through during before
after above below to from up down in out on off over under again further then once here there
all any both each few more most other some such no nor not only own same so than too very s t
can will just don should now i me my myself we our ours ourselves you your yours yourself
yourselves he him his himself she her hers herself it its itself they them their theirs
themselves what which who whom this that these those am is are was were be been being have has
had having do does did doing would could shall might must may also im ive id youre dont
doesnt didnt cant wont isnt arent wasnt hi hello hey hiya dear please pls plz thanks thank
thx ty cheers ok okay yes yeah yep no nope sure hmm um uh like know tell want wanted wondering
wonder question questions ask asking get got getting let lets need needs would need help
anyone someone something anything thing things way much many really actually just still
how when where why whether ever
whats wheres hows whos u r ur ya guys anything really actually right now
long far often soon time times somewhere anywhere everywhere nowhere else possible exactly
currently moment usually normally generally kind type sort able
go goes going gone bad look looking make made whole happen happens happened another re
der die das den dem des ein eine einer eines einem einen und oder aber wenn dass ich du er
sie es wir ihr mich dich sich uns euch mein meine dein deine sein seine unser unsere euer
ist sind war waren bin bist hat habe haben hast hatte kann koennen konnen kannst muss will
wollen moechte mochte mit von zu zum zur im in am an auf aus bei fuer fur nach ueber uber um
vor nicht kein keine ja nein auch noch schon nur so wie was wer wo wann warum welche welcher
welches gibt es bitte danke hallo hi gerne mal doch denn genau habt
le la les un une des du de et ou mais si que qui quoi quel quelle quels quelles je tu il elle
nous vous ils elles me te se mon ma mes ton ta tes son sa ses notre nos votre vos leur leurs
est sont etait suis es avez avons ont ai as a au aux dans sur pour par avec sans en y ne pas
plus ce cet cette ces comment quand ou pourquoi combien bonjour merci svp stp oui non est-ce
peut peux pouvez puis voudrais veux voudrait faites fait
el la los las un una unos unas y o pero si que quien cual cuales yo tu el ella nosotros
vosotros ellos ellas me te se mi mis tu tus su sus nuestro nuestra es son era estoy esta
estan tengo tiene tienen tienes hay he ha han de del al a en por para con sin sobre no mas
como cuando donde por que porque cuanto cuanta hola gracias favor puedo puede pueden quiero
quisiera
""".split())

_SUFFIXES = ("ations", "ation", "ments", "ment", "ings", "ing", "ies", "ied", "ers", "er",
             "ed", "es", "ly", "s", "y", "e")
_VOWELS = set("aeiou")


@functools.lru_cache(maxsize=8192)
def fold(text: str) -> str:
    """Lower-case and strip diacritics ("Öffnungszeiten" → "offnungszeiten").

    Cached: the responder folds the same passage sentences for every message it answers.
    ASCII text has nothing to decompose (its NFKD form is itself): just lower-cased.
    """
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def tokens(text: str) -> list[str]:
    """Every word of a text, folded: letters and digits only, no punctuation or emoji."""
    return _TOKEN.findall(fold(text or ""))


_JOINED = re.compile(r"[^\W_]+(?:[-\u2010'\u2019][^\W_]+)+")


def index_text(*parts: str | None) -> str:
    """The token stream both FTS engines index: folded words separated by spaces.

    A hyphenated or apostrophised word is also indexed joined ("Wi-Fi" → wi fi wifi,
    "check-up" → check up checkup), the way customers often type it.
    """
    out: list[str] = []
    for part in parts:
        if part:
            out.extend(tokens(part))
            out.extend("".join(_TOKEN.findall(m)) for m in _JOINED.findall(fold(part)))
    return " ".join(out)


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light, language-agnostic stem that is a prefix of the word's common forms.

    Strips one common English/Romance suffix (keeping at least 3 letters) and undoubles a
    final consonant (shipping → shipp → ship), so "pric" covers price/prices/pricing and
    "deliver" covers delivery/deliveries/delivered.
    """
    if len(word) <= 3 or word.isdigit():
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            root = word[: -len(suffix)]
            if len(root) >= 4 and root[-1] == root[-2] and root[-1] not in _VOWELS \
                    and root[-1] not in "ls":
                root = root[:-1]
            elif len(root) >= 4 and root.endswith("ll"):
                root = root[:-1]          # cancell(ation) → cancel
            return root
    return word


# Snowball stemmers of the languages Dana's customers write most. A stem is compared only
# with stems of the same language ("en:deliveri" ← delivery, deliveries); the prefix rule
# above still serves the FTS stage. The stemmer objects keep state while stemming, so one
# lock guards them (results are cached, so it is rarely taken).
_SNOWBALL = {lang: snowballstemmer.stemmer(name) for lang, name in
             (("en", "english"), ("de", "german"), ("fr", "french"), ("es", "spanish"))}
_SNOWBALL_LOCK = threading.Lock()


@functools.lru_cache(maxsize=131072)
def snowball_stems(word: str) -> frozenset[str]:
    """The word's Snowball stem in each supported language, tagged with the language.

    Numbers and words under 4 letters stem to themselves only, so "pm" or "12" never
    collide with a stem of a longer word.
    """
    if len(word) < 4 or word.isdigit():
        return frozenset({f"=:{word}"})
    with _SNOWBALL_LOCK:
        return frozenset(f"{lang}:{st.stemWord(word)}" for lang, st in _SNOWBALL.items()
                         if len(st.stemWord(word)) >= 3)


@functools.lru_cache(maxsize=4096)
def stem_index(search_text: str) -> frozenset[str]:
    """Every Snowball stem (see snowball_stems) of a passage's index_text() stream, cached."""
    out: set[str] = set()
    for tok in set(search_text.split()):
        out |= snowball_stems(tok)
    return frozenset(out)


def stems_match(alts: list[str], stems: frozenset[str]) -> bool:
    """Does any alternative share a same-language Snowball stem with a text's stems?"""
    return any(not snowball_stems(a).isdisjoint(stems) for a in alts)


def within_one_edit(a: str, b: str) -> bool:
    """Are two words one typo apart (one letter inserted, dropped, changed or swapped)?"""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diff = [i for i in range(la) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    if la > lb:
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1:]


def typo_fix(word: str, vocabulary: frozenset[str]) -> str | None:
    """The knowledge base's word one typo away from an unknown word of 5+ letters, if
    exactly one such word exists (an ambiguous fix is no fix).
    """
    if len(word) < 5 or word.isdigit() or word in vocabulary:
        return None
    found = {v for v in vocabulary if v[0] == word[0] and abs(len(v) - len(word)) <= 1
             and within_one_edit(word, v)}
    return found.pop() if len(found) == 1 else None


def content_terms(text: str, limit: int = 12) -> list[str]:
    """The distinct content words of a query, folded, in order (stopwords and 1-letter words
    dropped), at most `limit` of them so a pasted essay cannot make a huge FTS query.
    """
    seen: list[str] = []
    for tok in tokens(text):
        if tok in STOPWORDS or (len(tok) < 2 and not tok.isdigit()):
            continue
        if tok not in seen:
            seen.append(tok)
        if len(seen) >= limit:
            break
    return seen


def term_matches(term: str, doc_tokens: set[str], doc_stems: set[str]) -> bool:
    """Does a query term occur in a text (given its token and stem sets)?

    The exact word, the same stem, or a word that starts with the term's stem when that
    stem has at least 4 letters (the FTS prefix query is a superset of this rule).
    """
    if term in doc_tokens:
        return True
    s = stem(term)
    if s in doc_stems:
        return True
    if len(s) >= 4:  # (map keeps the scan in C: it runs for every sentence of an answer)
        return any(map(str.startswith, doc_tokens, repeat(s)))
    return False


SYNONYM_DIR = Path(__file__).with_name("synonyms")


def load_synonyms(directory: Path = SYNONYM_DIR) -> tuple[dict[str, list[tuple[str, ...]]],
                                                           dict[str, str]]:
    """The maintained synonym lists, one file per language (synonyms/<lang>.txt).

    A line is a group of interchangeable words ("shop, store, boutique") or a phrase rewrite
    ("send back => return"); "#" starts a comment. Words are folded here, so a list may be
    written with accents. Returns (groups per language, phrase → word).
    """
    groups: dict[str, list[tuple[str, ...]]] = {}
    phrases: dict[str, str] = {}
    for path in sorted(directory.glob("*.txt")):
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = raw.split("#", 1)[0].strip()
            if "=>" in line:
                phrase, word = (" ".join(tokens(x)) for x in line.split("=>", 1))
                if phrase and word:
                    phrases[phrase] = word
            elif line:
                group = tuple(dict.fromkeys(w for w in (" ".join(tokens(x))
                                                        for x in line.split(",")) if w))
                if len(group) > 1:
                    groups.setdefault(path.stem, []).append(group)
    return groups, phrases


# Customers' words for what the knowledge calls otherwise, per language, and the multi-word
# phrases they use rewritten to the knowledge's word: see synonyms/<lang>.txt.
SYNONYMS, PHRASES = load_synonyms()
_GROUPS: dict[str, set[str]] = {}
for _groups in SYNONYMS.values():
    for _group in _groups:
        for _word in _group:
            _GROUPS.setdefault(_word, set()).update(_group)


def rewrite_phrases(text: str) -> str:
    """The text, folded, with customers' multi-word phrases replaced by the knowledge's word."""
    out = " ".join(tokens(text))
    for phrase, word in PHRASES.items():
        out = re.sub(rf"\b{phrase}\b", word, out)
    return out


def alternatives(term: str) -> list[str]:
    """The term and its synonyms (the term first)."""
    return [term] + sorted(_GROUPS.get(term, set()) - {term})


def any_matches(alts: list[str], doc_tokens: set[str], doc_stems: set[str]) -> bool:
    """Does any of a term's alternatives occur in a text (see term_matches)?"""
    for a in alts:
        if term_matches(a, doc_tokens, doc_stems):
            return True
    return False


class TermMatcher:
    """term_matches() for one query term and its synonyms, run on an index_text() string.

    The same rule, but as one regex search over the passage's token stream instead of a
    Python loop over its tokens: a stem of 4+ letters matches any word it begins; a shorter
    stem matches the term itself or a word with that same stem.
    """

    def __init__(self, alts: list[str]):
        """Compile the matcher for a term's alternatives (the term and its synonyms)."""
        long_stems, self.short = [], []
        for a in alts:
            s = stem(a)
            if len(s) >= 4:
                long_stems.append(re.escape(s))
            else:
                self.short.append((a, s, re.compile(rf"(?:^| )({re.escape(s)}\w*)")))
        self.long = re.compile(rf"(?:^| )(?:{'|'.join(long_stems)})") if long_stems else None

    def __call__(self, text: str) -> bool:
        """Does the term (or a synonym) occur in this space-separated token stream?"""
        if self.long is not None and self.long.search(text):
            return True
        for term, s, rx in self.short:
            for m in rx.finditer(text):
                word = m.group(1)
                if word == term or stem(word) == s:
                    return True
        return False


def idf(df: int, n: int) -> float:
    """BM25's inverse document frequency: always positive, highest for unseen words."""
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))


def coverage(terms: list[str], weights: dict[str, float], text_tokens: list[str],
             alts: dict[str, list[str]] | None = None) -> float:
    """The IDF-weighted share of the query's terms that a text contains (0..1); with `alts`,
    a term counts as contained when one of its synonyms is.
    """
    total = sum(weights[t] for t in terms)
    if total <= 0:
        return 0.0
    toks = set(text_tokens)
    stems = {stem(t) for t in toks}
    hit = sum(weights[t] for t in terms
              if any_matches((alts or {}).get(t, [t]), toks, stems))
    return hit / total


_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9ÄÖÜÉÈÀÂÎÔÛÇÑ¿¡])")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+")
_HEADING_LINE = re.compile(r"^\s*#{1,6}\s")


def sentences(text: str) -> list[str]:
    """Split prose into sentences. Hard-wrapped lines of a paragraph are joined first; list
    items and headings stay units of their own.
    """
    out: list[str] = []
    for block in re.split(r"\n\s*\n", text or ""):
        units: list[str] = []
        for line in (ln.strip() for ln in block.splitlines()):
            if not line:
                continue
            new_unit = (not units or _LIST_ITEM.match(line) or _HEADING_LINE.match(line)
                        or units[-1].endswith(":") or _HEADING_LINE.match(units[-1]))
            if new_unit:
                units.append(line)
            else:
                units[-1] = f"{units[-1]} {line}"
        for unit in units:
            if _LIST_ITEM.match(unit) or _HEADING_LINE.match(unit):
                out.append(unit)
            else:
                out.extend(part.strip() for part in _SENTENCE.split(unit) if part.strip())
    return out
