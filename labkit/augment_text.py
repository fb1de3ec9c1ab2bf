"""Text augmentation (11.1.3): the EDA family, a sentence-level transformation, and new sentences
from a small n-gram language model.

What each operation preserves (and how it can hurt):

* synonym replacement — the meaning, if the synonym fits the context ("bill" for "invoice");
  a wrong sense ("charge" as in *attack*) adds noise;
* random insertion — every original word; adds a synonym of one of them somewhere;
* random swap — the bag of words (what a bag-of-words classifier sees), not the grammar;
* random deletion — most words; can delete the one word that carries the label;
* clause reordering — every word and clause, only their order;
* n-gram generation — local word statistics of one class; whole sentences may be nonsense and can
  copy training sentences, so they add little that the classifier has not seen.

Synonyms come from WordNet through NLTK when its data is installed, otherwise from the lexicon
shipped in ``data/lexicon/synonyms.txt`` (see its card, ``data/lexicon/README.md``).

All functions take a ``numpy.random.Generator`` so that results are reproducible from a seed.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from .data import DATA_DIR, DataCard, DataError, Dataset, MissingDataError, loading
from .params import check_fraction, check_int

CORPUS_PATH = DATA_DIR / "text" / "support_tickets.csv"
LEXICON_PATH = DATA_DIR / "lexicon" / "synonyms.txt"

# Words never replaced, deleted on purpose or inserted: they carry grammar, not topic.
STOPWORDS = frozenset("""a an the and or but if of to in on at by for with from as is are was were be been
being am do does did have has had i me my we our you your he she it its they them their this that these
those there here not no so than too very can could would should will just all any some each every
what which who whom how why when where into over after before again then once about out up down off
""".split())

_TOKEN = re.compile(r"[a-z0-9']+|[.,!?;:]")


# -- data ---------------------------------------------------------------------------------------
def load_corpus(path=None) -> Dataset:
    """The support-ticket corpus (258 short messages, 4 classes) as a Dataset with ``frame``."""
    import pandas as pd

    path = Path(path) if path is not None else CORPUS_PATH
    fix = "restore it with `git checkout data/text` (it ships with the repository)"
    if not path.is_file():
        raise MissingDataError(f"text corpus not found at {path}; {fix}")
    with loading(path, fix):
        frame = pd.read_csv(path, encoding="utf-8", dtype=str, keep_default_na=False)
    if list(frame.columns) != ["text", "label"]:
        raise DataError(f"{path} must have columns text,label; has {list(frame.columns)[:5]}; {fix}")
    if frame.empty or (frame.text.str.strip() == "").any() or (frame.label.str.strip() == "").any():
        raise DataError(f"{path} has no rows or empty text/label cells; {fix}")
    card = DataCard(
        name="support tickets", source="written for this workbook (project-authored, see data/text/README.md)",
        licence="CC0 1.0", size=f"{len(frame)} messages, {frame.label.nunique()} classes",
        description="short customer-support messages labelled by topic",
        columns={"text": "one message, one sentence", "label": ", ".join(sorted(frame.label.unique()))})
    return Dataset(card=card, frame=frame)


def load_lexicon(path=None) -> dict:
    """Word → sorted synonyms, from a file of comma-separated synonym groups (``#`` comments)."""
    path = Path(path) if path is not None else LEXICON_PATH
    fix = "restore it with `git checkout data/lexicon` (it ships with the repository)"
    if not path.is_file():
        raise MissingDataError(f"synonym lexicon not found at {path}; {fix}")
    with loading(path, fix):
        text = path.read_text(encoding="utf-8")
    synonyms = defaultdict(set)
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        group = [w.strip().lower() for w in line.split(",") if w.strip()]
        for word in group:
            synonyms[word].update(w for w in group if w != word)
    return {w: sorted(s) for w, s in synonyms.items() if s}


def wordnet_synonyms():
    """A ``word -> synonyms`` function backed by NLTK WordNet, or ``None`` when it is not installed."""
    try:
        from nltk.corpus import wordnet

        wordnet.synsets("test")  # raises LookupError when the WordNet data is missing
    except Exception:  # noqa: BLE001 - ImportError or LookupError: fall back to the lexicon
        return None

    def lookup(word):
        names = {lemma.name().lower() for s in wordnet.synsets(word) for lemma in s.lemmas()}
        return sorted(n for n in names if n != word and "_" not in n)

    return lookup


def synonym_source(prefer_wordnet: bool = True):
    """``(lookup, name)``: WordNet when installed (and preferred), else the shipped lexicon."""
    lookup = wordnet_synonyms() if prefer_wordnet else None
    if lookup is not None:
        return lookup, "WordNet (NLTK)"
    lexicon = load_lexicon()
    return (lambda word: lexicon.get(word, [])), "shipped lexicon (data/lexicon/synonyms.txt)"


def _as_lookup(synonyms):
    if synonyms is None:
        return synonym_source()[0]
    if isinstance(synonyms, dict):
        return lambda word: synonyms.get(word, [])
    if callable(synonyms):
        return synonyms
    raise TypeError("synonyms must be a dict, a function word -> list, or None")


# -- tokens -------------------------------------------------------------------------------------
def tokenize(text: str) -> list[str]:
    """Lower-case word and punctuation tokens."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    return _TOKEN.findall(text.lower())


def detokenize(tokens) -> str:
    """Join tokens with spaces, without a space before punctuation."""
    return re.sub(r" ([.,!?;:])", r"\1", " ".join(tokens))


def _is_word(token):
    return token[0].isalnum()


def _rng(rng):
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


# -- the EDA operations -------------------------------------------------------------------------
def synonym_replacement(text: str, n: int, rng=None, synonyms=None) -> str:
    """Replace ``n`` different non-stopwords that have synonyms, each by a random synonym.

    Exactly ``min(n, number of replaceable words)`` words change; the token count stays the same.
    """
    n = check_int("n", n, 0)
    rng, lookup = _rng(rng), _as_lookup(synonyms)
    tokens = tokenize(text)
    candidates = [i for i, t in enumerate(tokens)
                  if _is_word(t) and t not in STOPWORDS and [s for s in lookup(t) if s != t]]
    for i in rng.permutation(candidates)[:n]:
        options = [s for s in lookup(tokens[i]) if s != tokens[i]]
        tokens[i] = options[rng.integers(len(options))]
    return detokenize(tokens)


def random_insertion(text: str, n: int, rng=None, synonyms=None) -> str:
    """Insert, ``n`` times, a synonym of a random non-stopword at a random position."""
    n = check_int("n", n, 0)
    rng, lookup = _rng(rng), _as_lookup(synonyms)
    tokens = tokenize(text)
    for _ in range(n):
        candidates = [t for t in tokens if _is_word(t) and t not in STOPWORDS and lookup(t)]
        if not candidates:
            break
        options = lookup(candidates[rng.integers(len(candidates))])
        tokens.insert(int(rng.integers(len(tokens) + 1)), options[rng.integers(len(options))])
    return detokenize(tokens)


def random_swap(text: str, n: int, rng=None) -> str:
    """Swap two random words, ``n`` times (punctuation stays where it is)."""
    n = check_int("n", n, 0)
    rng = _rng(rng)
    tokens = tokenize(text)
    words = [i for i, t in enumerate(tokens) if _is_word(t)]
    if len(words) >= 2:
        for _ in range(n):
            i, j = rng.choice(words, size=2, replace=False)
            tokens[i], tokens[j] = tokens[j], tokens[i]
    return detokenize(tokens)


def random_deletion(text: str, p: float, rng=None) -> str:
    """Delete each word with probability ``p``; at least one word always survives."""
    p = check_fraction("p", p)
    rng = _rng(rng)
    tokens = tokenize(text)
    words = [i for i, t in enumerate(tokens) if _is_word(t)]
    if not words:
        return detokenize(tokens)
    drop = {i for i in words if rng.random() < p}
    if len(drop) == len(words):
        drop.discard(words[rng.integers(len(words))])
    return detokenize([t for i, t in enumerate(tokens) if i not in drop])


_SPLIT = re.compile(r"\s*(,\s*(?:and|but|although|because)\b|,|\band\b|\bbut\b|\balthough\b|\bbecause\b)\s*")


def reorder_clauses(text: str, rng=None) -> str:
    """Sentence-level transformation: "A, and B." → "B and A." (same words, clauses reordered).

    Splits at commas and at *and / but / although / because*; a sentence with one clause comes back
    unchanged (lower-cased and re-tokenised).
    """
    rng = _rng(rng)
    body = detokenize(tokenize(text))
    end = body[-1] if body and body[-1] in ".!?" else ""
    body = body[:-1] if end else body
    parts = _SPLIT.split(body)
    clauses, joins = parts[0::2], parts[1::2]
    clauses = [c.strip(" ,") for c in clauses]
    if len(clauses) < 2 or not all(clauses):
        return body + end
    order = list(range(len(clauses)))
    while order == sorted(order):
        order = list(rng.permutation(len(clauses)))
    joined = [clauses[order[0]]]
    for join, k in zip(joins, order[1:]):
        joined.append((join if join.startswith(",") else " " + join) + " " + clauses[k])
    return "".join(joined) + end


def eda(text: str, n_aug: int = 4, alpha: float = 0.1, rng=None, synonyms=None) -> list[str]:
    """``n_aug`` new versions of ``text``, each made by one random EDA operation of strength ``alpha``
    (Wei & Zou 2019): ``max(1, alpha · words)`` words replaced, inserted or swapped, or each word
    deleted with probability ``alpha``."""
    n_aug = check_int("n_aug", n_aug, 0)
    alpha = check_fraction("alpha", alpha)
    rng, lookup = _rng(rng), _as_lookup(synonyms)
    n = max(1, int(alpha * sum(_is_word(t) for t in tokenize(text))))
    ops = [lambda t: synonym_replacement(t, n, rng, lookup), lambda t: random_insertion(t, n, rng, lookup),
           lambda t: random_swap(t, n, rng), lambda t: random_deletion(t, alpha, rng),
           lambda t: reorder_clauses(t, rng)]
    return [ops[rng.integers(len(ops))](text) for _ in range(n_aug)]


def augment_corpus(texts, labels, n_aug: int = 4, alpha: float = 0.1, rng=None, synonyms=None):
    """Originals plus ``n_aug`` EDA versions of each text (labels copied): ``(texts, labels)``."""
    rng, lookup = _rng(rng), _as_lookup(synonyms)
    out_texts, out_labels = list(texts), list(labels)
    for text, label in zip(texts, labels):
        out_texts += eda(text, n_aug, alpha, rng, lookup)
        out_labels += [label] * n_aug
    return out_texts, out_labels


# -- generation: a small language model trained on the training texts ----------------------------
class NgramLM:
    """A word n-gram language model with back-off, fitted on a list of texts.

    ``generate`` samples a new sentence word by word from the counts of the longest context seen
    in training (``n-1`` words, backing off to shorter contexts).
    """

    def __init__(self, n: int = 3):
        self.n = check_int("n", n, 1, 6)
        self.counts = [defaultdict(Counter) for _ in range(self.n)]  # counts[k][context of k words]

    def fit(self, texts):
        texts = list(texts)
        if not texts:
            raise ValueError("NgramLM.fit needs at least one text")
        for text in texts:
            tokens = ["<s>"] * (self.n - 1) + tokenize(text) + ["</s>"]
            for i in range(self.n - 1, len(tokens)):
                for k in range(self.n):
                    self.counts[k][tuple(tokens[i - k:i])][tokens[i]] += 1
        return self

    def next_word(self, context, rng):
        for k in range(self.n - 1, -1, -1):
            key = tuple(context[len(context) - k:]) if k else ()
            counter = self.counts[k].get(key)
            if counter:
                words, freq = zip(*counter.items())
                freq = np.asarray(freq, dtype=float)
                return words[rng.choice(len(words), p=freq / freq.sum())]
        raise RuntimeError("NgramLM has not been fitted")

    def generate(self, rng=None, max_words: int = 30) -> str:
        rng = _rng(rng)
        context, words = ["<s>"] * (self.n - 1), []
        while len(words) < max_words:
            word = self.next_word(context, rng)
            if word == "</s>":
                break
            words.append(word)
            context = context[1:] + [word] if self.n > 1 else context
        return detokenize(words)


def generate_corpus(texts, labels, n_per_class: int, n: int = 3, rng=None):
    """New labelled texts: one :class:`NgramLM` per class, ``n_per_class`` novel sentences each
    (sentences that copy a training text are dropped, up to a limit of tries)."""
    rng = _rng(rng)
    by_class = defaultdict(list)
    for text, label in zip(texts, labels):
        by_class[label].append(text)
    out_texts, out_labels = [], []
    for label, items in sorted(by_class.items()):
        model = NgramLM(n).fit(items)
        seen = {detokenize(tokenize(t)) for t in items}
        made = 0
        for _ in range(20 * n_per_class):
            if made == n_per_class:
                break
            sentence = model.generate(rng)
            if sentence and sentence not in seen:
                seen.add(sentence)
                out_texts.append(sentence)
                out_labels.append(label)
                made += 1
    return out_texts, out_labels
