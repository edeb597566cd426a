"""What a customer message is about (intent) and which language it is in — offline and fast.

Intents are rule-based phrase lists for English, German, French and Spanish (accents are
folded away first, so "geöffnet"/"geoffnet" and "¿cuánto?"/"cuanto" match alike). Language
comes from py3langid, whose model ships inside the package (nothing is downloaded), with a
word list for the short messages ("hallo", "merci") a statistical model gets wrong.
"""
from __future__ import annotations

import copy
import re
import threading

from py3langid.langid import MODEL_FILE, LanguageIdentifier

from automation.knowledge.text import content_terms, fold, tokens

INTENTS = ("greeting", "thanks", "goodbye", "human_request", "complaint", "order_status",
           "pricing", "question", "other")


def _rx(*patterns: str) -> re.Pattern:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


_HUMAN = _rx(
    r"\b(real|actual|live|human) (person|human|agent|people|being)\b", r"\bhumans?\b",
    r"\b(speak|talk|chat)\w* (to|with) (a |an |the |your )?(someone|somebody|person|agent|"
    r"representative|rep|manager|staff|employee|operator|team)\b",
    r"\b(customer service|support) (agent|representative|rep|person)\b",
    r"\b(not|no|stop) (a |the |this )?(bot|robot|machine|ai)\b", r"\boperator\b",
    r"\bmensch(en)?\b", r"\b(echte[nrm]?|richtige[nrm]?|lebende[nrm]?) (person|mensch|"
    r"mitarbeiter)", r"\b(mitarbeiter|berater|kundenberater)(in)?( sprechen)?\b",
    r"\bkein(en)? bot\b",
    r"\bhumain\b", r"\b(un|une) (conseill(er|ere)|agent|operat(eur|rice)|vraie personne|"
    r"personne reelle)\b", r"\bparler (a|avec) (quelqu.?un|un humain|une personne|un conseiller)",
    r"\bhumano\b", r"\b(un|una) (persona real|agente|asesor|asesora|operador|operadora)\b",
    r"\bhablar con (alguien|una persona|un humano|un agente|un asesor)",
)
_COMPLAINT = _rx(
    r"\bcomplain\w*", r"\b(terrible|awful|horrible|worst|unacceptable|disgusting|ridiculous|"
    r"outrageous|rude|scam|useless)\b", r"\bdisappoint\w*", r"\b(angry|furious|upset)\b",
    r"\b(broken|damaged|defective|faulty)\b", r"\bnever (arrived|came|received|got)\b",
    r"\bstill (not|hasn.?t|haven.?t) (arrived|received|come)", r"\bwaste of (money|time)\b",
    r"\bnot (happy|satisfied)\b", r"\b(bad|poor) (service|quality)\b",
    r"\bbeschwer\w*", r"\benttausch\w*", r"\b(unverschamt|frechheit|katastrophe|unzufrieden|"
    r"kaputt|beschadigt|defekt)\w*", r"\bnie angekommen\b",
    r"\bplainte\b", r"\bme plaindre\b", r"\bdecu(e|s)?\b", r"\b(inacceptable|scandaleux|honteux|"
    r"mecontent\w*|endommage\w*)\b", r"\bjamais (recu|arrive)",
    r"\b(queja|reclamacion|reclamo)\b", r"\bdecepcion\w*", r"\b(inaceptable|vergonzoso|"
    r"pesim[oa]|danad[oa]|rot[oa])\b", r"\bnunca (llego|recibi)",
)
_ORDER = _rx(
    r"\bwhere('?s| is) my (order|package|parcel|delivery|shipment)\b",
    r"\b(order|tracking|shipment) (number|status|id|no)\b", r"\btracking\b",
    r"\btrack (my )?(order|package|parcel)", r"\bmy (order|package|parcel|shipment)\b",
    r"\border\s*#?\s*\d{3,}", r"\bwhen will (my|it) (order |package |parcel )?(arrive|ship|come)",
    r"\bmeine (bestellung|sendung|lieferung)\b", r"\bmein paket\b",
    r"\bwo (ist|bleibt) mein\w*", r"\b(sendungsverfolgung|bestellnummer|lieferstatus)\b",
    r"\bma commande\b", r"\bmon colis\b", r"\bsuivi (de |du )?(ma |mon )?(commande|colis)",
    r"\bnumero de (commande|suivi)\b", r"\bou (en )?est ma commande\b",
    r"\bmi (pedido|paquete|envio)\b", r"\bseguimiento\b", r"\bnumero de pedido\b",
    r"\bestado de(l| mi) pedido\b",
)
_PRICING = _rx(
    r"\bpric(e|es|ed|ing)\b", r"\bcosts?\b", r"\bhow much\b", r"\bfees?\b",
    r"\b(expensive|cheap|cheaper|cheapest|discounts?|quote)\b",
    r"\bpreis\w*", r"\bkost(en|et)\b", r"\bwie ?viel\b", r"\b(teuer|gunstig|rabatt|gebuhr\w*)\b",
    r"\bprix\b", r"\bcombien\b", r"\bcout\w*", r"\btarifs?\b", r"\b(cher|remise|frais)\b",
    r"\bprecios?\b", r"\bcuanto (cuesta|vale|es|cobran|sale)", r"\b(cuesta|coste|costo|tarifas?|"
    r"caro|barato|descuento)\b",
)
_GREETING = _rx(
    r"\b(hi|hello|hey|heya|hiya|howdy|yo|greetings)\b", r"\bgood (morning|afternoon|evening|day)\b",
    r"\bhallo\b", r"\bguten (tag|morgen|abend)\b", r"\b(moin|servus|gruezi)\b", r"\bgruss gott\b",
    r"\b(bonjour|salut|bonsoir|coucou)\b", r"\bhola\b", r"\bbuen(os|as) (dias|tardes|noches)\b",
    r"\bbuenas\b",
)
_THANKS = _rx(
    r"\b(thanks|thank you|thankyou|thx|ty|cheers|tysm)\b", r"\bappreciate(d)?( it)?\b",
    r"\bdanke\w*", r"\b(vielen|besten|herzlichen) dank\b", r"\bmerci\b", r"\bgracias\b",
)
_GOODBYE = _rx(
    r"\b(bye|goodbye|good bye|byebye|cya|see ya|see you)\b",
    r"\bhave a (nice|good|great|lovely) (day|evening|weekend|one)\b",
    r"\btalk (to you )?(later|soon)\b", r"\btake care\b",
    r"\b(tschuss|tschau|ciao)\b", r"\bauf wiedersehen\b", r"\bbis (bald|dann|spater|morgen)\b",
    r"\bschonen (tag|abend)\b", r"\bau revoir\b", r"\ba (bientot|plus)\b",
    r"\bbonne (journee|soiree)\b", r"\b(adios|chao)\b", r"\bhasta (luego|pronto|manana)\b",
)
_QUESTION_START = _rx(
    r"^(what|when|where|why|who|whom|which|how|can|could|do|does|did|is|are|will|would|should|"
    r"may|have|has|any)\b",
    r"^(was|wann|wo|wie|warum|wer|welche\w*|kann|konnen|konnt|gibt|habt|haben|hast|ist|sind|"
    r"darf|durfen|muss)\b",
    r"^(que|quand|ou|comment|pourquoi|qui|quel\w*|est.ce|avez|pouvez|puis|peut|combien)\b",
    r"^(que|cuando|donde|como|por que|quien|cual\w*|puedo|pueden|tienen|tiene|hay|hacen|es|son)\b",
)
# Words that may surround a greeting/thanks/goodbye without making it a real request.
_SMALL_TALK = frozenset("""there again lot much very so all everyone guys team folks great
perfect awesome nice cool good super wonderful fantastic lovely day morning evening dana bot
today sir madam mate friend dear alles gut super toll parfait genial perfecto vale""".split())


def detect_intent(text: str) -> str:
    """The message's intent: greeting|thanks|goodbye|human_request|complaint|order_status|
    pricing|question|other (rule-based; en, de, fr, es).

    Requests outrank pleasantries: "thanks, but where is my order?" is order_status; a
    greeting, thanks or goodbye counts only when nothing else of substance is said.
    """
    folded = fold(text or "").strip()
    if not folded:
        return "other"
    flat = re.sub(r"[^\w#?¿']+", " ", folded).strip()
    for intent, rx in (("human_request", _HUMAN), ("complaint", _COMPLAINT),
                       ("order_status", _ORDER), ("pricing", _PRICING)):
        if rx.search(flat):
            return intent
    for intent, rx in (("goodbye", _GOODBYE), ("thanks", _THANKS), ("greeting", _GREETING)):
        if rx.search(flat):
            rest = _THANKS.sub(" ", _GOODBYE.sub(" ", _GREETING.sub(" ", flat)))
            left = [t for t in content_terms(rest) if t not in _SMALL_TALK and not t.isdigit()]
            if not left or (len(left) == 1 and "?" not in rest):
                return intent
            break
    if "?" in folded or "¿" in folded or _QUESTION_START.search(flat):
        return "question"
    return "other"


# ---------------------------------------------------------------------------- language

# Short messages: words that settle the language on their own.
_SHORT_WORDS = {
    "en": "hi hello hey thanks thank you bye yes please ok okay good morning great where what "
          "when how price open cheers",
    "de": "hallo danke dankeschon tschuss ja nein bitte guten morgen abend moin servus wann wo "
          "wie was preis geoffnet vielen dank gerne",
    "fr": "bonjour salut merci oui non bonsoir au revoir combien ou quand prix ouvert svp "
          "beaucoup coucou",
    "es": "hola gracias adios si por favor buenos dias buenas tardes noches cuanto donde cuando "
          "precio abierto vale muchas",
    "it": "ciao grazie buongiorno buonasera prego quanto dove quando prezzo aperto",
    "pt": "ola obrigado obrigada bom dia boa tarde quanto onde quando preco aberto",
    "nl": "hoi dank bedankt goedemorgen doei hoeveel waar wanneer prijs open",
}
_WORD_LANGS: dict[str, list[str]] = {}
for _lang, _words in _SHORT_WORDS.items():
    for _w in _words.split():
        _WORD_LANGS.setdefault(_w, []).append(_lang)
# Languages a short, word-list-less message is judged among.
_COMMON = ["en", "de", "fr", "es", "it", "pt", "nl", "pl", "tr", "ru", "ar", "zh", "ja"]
_identifiers: dict[str, object] = {}
_lock = threading.Lock()


def _identifier(restricted: bool):
    """py3langid's identifier: its bundled model is read once per process (about 0.6 s of
    CPU, see warm_up); the one restricted to common languages is a copy of it.
    """
    key = "common" if restricted else "all"
    if key not in _identifiers:
        with _lock:
            if "all" not in _identifiers:
                _identifiers["all"] = LanguageIdentifier.from_model_file(MODEL_FILE,
                                                                         norm_probs=True)
            if key not in _identifiers:
                ident = copy.copy(_identifiers["all"])  # set_languages replaces, not mutates
                ident.set_languages(_COMMON)
                _identifiers[key] = ident
    return _identifiers[key]


def warm_up() -> None:
    """Read the language model now: a process that runs events calls this when it starts,
    so that its first customer message does not wait for it.
    """
    _identifier(True)


def detect_language(text: str, default: str = "en") -> str:
    """The ISO 639-1 code of the message's language; `default` when it cannot tell.

    Short texts (three words or fewer) are judged by a word list first, then by the model
    among common languages only, and only when it is confident.
    """
    words = tokens(text or "")
    letters = sum(len(w) for w in words if not w.isdigit())
    if not words or letters == 0:
        return default
    if len(words) <= 3 or letters < 15:
        votes: dict[str, int] = {}
        for w in words:
            for lang in _WORD_LANGS.get(w, []):
                votes[lang] = votes.get(lang, 0) + 1
        if votes:
            best = max(votes.values())
            winners = [lang for lang, v in votes.items() if v == best]
            return default if default in winners else winners[0]
        lang, prob = _identifier(restricted=True).classify(text)
        return lang if prob >= 0.9 else default
    lang, _prob = _identifier(restricted=False).classify(text)
    return lang
