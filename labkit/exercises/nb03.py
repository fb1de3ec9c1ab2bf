"""Exercises of notebook 03 — data augmentation (11.1.3): choosing label-preserving augmentations.

q4 writes the noise scaling that the notebook's noise-augmented audio training set is built with
(``noise_for_snr = ex.q4.use(noise_for_snr, "noise scaling")``). The items of q1 and q3 are written
out in the notebook cells; their answer keys stay here.
"""
import numpy as np

from . import Exercise, Incorrect, call

_DIGIT_KEY = {
    "rotate by a random angle in ±15°": "keeps",
    "rotate by 180°": "changes",
    "mirror left-right (horizontal flip)": "changes",
    "shift by up to 3 pixels": "keeps",
    "scale by 90 %–110 %": "keeps",
    "change contrast by ±30 %": "keeps",
    "mirror top-bottom (vertical flip)": "changes",
}

_TASK_KEY = {
    "speech command 'up' vs 'down': pitch shift by 2 semitones": "keeps",
    "speaker is a child or an adult: pitch shift by 7 semitones": "changes",
    "bird species from its song: add noise at 20 dB SNR": "keeps",
    "review sentiment: replace 'good' by 'bad'": "changes",
    "support-ticket topic: swap two random words": "keeps",
    "music tempo in beats per minute: play 1.2× faster": "changes",
    "left/right arrow signs in photos: horizontal flip": "changes",
}


DIGIT_AUGMENTATIONS = tuple(_DIGIT_KEY)   # the items only, in the notebook's order
TASK_AUGMENTATIONS = tuple(_TASK_KEY)


def _answer_code(key):
    return "answer = {\n" + "".join(f"    {k!r}: {v!r},\n" for k, v in key.items()) + "}"


def _check_labels(expected, what):
    def check(answer):
        if not isinstance(answer, dict) or set(answer) != set(expected):
            raise Incorrect(f"answer with a dict that has exactly the {len(expected)} {what} of the cell "
                            "as keys, each with 'keeps' or 'changes'")
        bad = [v for v in answer.values() if v not in ("keeps", "changes")]
        if bad:
            raise Incorrect(f"use only 'keeps' or 'changes'; got {bad[0]!r}")
        wrong = sum(answer[k] != v for k, v in expected.items())
        if wrong:
            raise Incorrect(f"{wrong} of {len(expected)} are not right yet. For each one ask: would a "
                            "person who labels the augmented example still give it the same label?")
    return check


def noise_for_snr(signal, noise, snr_db):
    """Reference: scale ``noise`` so that ``signal + noise`` has the requested SNR in dB."""
    p_signal = np.mean(np.square(signal))
    p_noise = np.mean(np.square(noise))
    return noise * np.sqrt(p_signal / (p_noise * 10 ** (snr_db / 10)))


def _check_noise(function):
    rng = np.random.default_rng(3)
    t = np.arange(2000) / 8000
    signal = 0.7 * np.sin(2 * np.pi * 440 * t)
    for snr in (20.0, 0.0, -5.0):
        noise = rng.standard_normal(len(t)) * rng.uniform(0.1, 3)
        scaled = np.asarray(call(function, signal, noise, snr), dtype=float)
        if scaled.shape != signal.shape:
            raise Incorrect(f"return noise of the signal's shape {signal.shape}, got {scaled.shape}")
        got = 10 * np.log10(np.mean(signal ** 2) / np.mean(scaled ** 2))
        if abs(got - snr) > 0.01:
            raise Incorrect(f"asked for {snr} dB, your noise gives {got:.2f} dB. SNR compares mean "
                            "powers (mean of squares), in decibels: 10·log10(P_signal / P_noise)")
        if np.corrcoef(scaled, noise)[0, 1] < 0.999:
            raise Incorrect("only rescale the given noise; do not draw new noise")


BAG_OF_WORDS_BLIND = {"random_swap", "reorder_clauses"}
TEXT_OPS = ("synonym_replacement", "random_insertion", "random_swap", "random_deletion", "reorder_clauses")


def _check_blind(answer):
    if isinstance(answer, str) or not isinstance(answer, (list, tuple, set)):
        raise Incorrect("answer with a list of operation names")
    answer = set(answer)
    unknown = answer - set(TEXT_OPS)
    if unknown:
        raise Incorrect(f"unknown operation {sorted(unknown)[0]!r}; choose from {', '.join(TEXT_OPS)}")
    if answer != BAG_OF_WORDS_BLIND:
        raise Incorrect("not yet. A unigram bag of words counts each word and forgets the order: "
                        "which operations leave every word's count unchanged?")


EXERCISES = [
    Exercise(
        name="q1", prompt="For a digit classifier, mark each augmentation in the cell as 'keeps' or "
                          "'changes' the label.",
        checker=_check_labels(_DIGIT_KEY, "augmentations"),
        hints=("Picture a 6 under each transformation. Is it still a 6, or a 9, or no digit at all?",
               "Mirrored 2, 3, 4, 5, 7 are not digits; an upside-down 6 is a 9."),
        solution_code=_answer_code(_DIGIT_KEY), reference=dict(_DIGIT_KEY)),
    Exercise(
        name="q2", prompt="Which of the text operations does a *unigram* bag-of-words classifier not see "
                          "at all (its input is unchanged)? Answer with a list of names from "
                          "`labkit.exercises.nb03.TEXT_OPS`.",
        checker=_check_blind,
        hints=("A bag of words keeps how often each word occurs and nothing else.",),
        solution_code='answer = ["random_swap", "reorder_clauses"]',
        reference=sorted(BAG_OF_WORDS_BLIND)),
    Exercise(
        name="q3", prompt="The same question across tasks: mark each task and augmentation in the cell "
                          "as 'keeps' or 'changes' the label.",
        checker=_check_labels(_TASK_KEY, "task/augmentation pairs"),
        hints=("An augmentation is safe when it changes something the label does not depend on.",
               "Pitch carries the speaker's age, tempo is the label of a tempo task, "
               "and arrows point the other way in a mirror."),
        solution_code=_answer_code(_TASK_KEY), reference=dict(_TASK_KEY)),
    Exercise(
        name="q4", prompt="Write `noise_for_snr(signal, noise, snr_db)` that rescales `noise` so that "
                          "`signal + noise` has a signal-to-noise ratio of `snr_db` decibels. The "
                          "noise-augmented audio training set is built with it.",
        checker=_check_noise,
        hints=("SNR in dB is 10·log10(P_signal / P_noise), P = mean of the squared samples.",
               "Multiplying noise by k multiplies its power by k²."),
        solution_code="def noise_for_snr(signal, noise, snr_db):\n"
                      "    p_signal = np.mean(signal ** 2)\n"
                      "    p_noise = np.mean(noise ** 2)\n"
                      "    return noise * np.sqrt(p_signal / (p_noise * 10 ** (snr_db / 10)))",
        reference=noise_for_snr),
]
