"""Exercises of notebook 01 — dataset types (11.1.1)."""
import numpy as np

from . import Exercise, Incorrect, call

KINDS = {
    "photos of digits, each with the digit it shows": "supervised",
    "customer purchase histories, to find groups of similar customers": "unsupervised",
    "a robot's sensor readings, motor commands and rewards, step by step": "reinforcement",
    "house features and sale prices": "supervised",
    "news articles with no tags, to discover topics": "unsupervised",
}


def _check_kinds(answer):
    if not isinstance(answer, dict) or set(answer) != set(KINDS):
        raise Incorrect("answer with a dict that has exactly the five descriptions as keys")
    allowed = {"supervised", "unsupervised", "reinforcement"}
    bad = [v for v in answer.values() if v not in allowed]
    if bad:
        raise Incorrect(f"use only the words {sorted(allowed)}; got {bad[0]!r}")
    wrong = sum(answer[k] != v for k, v in KINDS.items())
    if wrong:
        raise Incorrect(f"{wrong} of 5 are not right yet. Ask: is there a target to predict, "
                        "no target at all, or a reward that follows an action?")


def episode_returns(rewards, episode):
    """Reference: total reward of each episode from flat transition arrays."""
    return np.bincount(episode, weights=rewards)


def _check_returns(function):
    rng = np.random.default_rng(1)
    episode = np.repeat(np.arange(4), [3, 7, 1, 5])
    rewards = rng.random(len(episode))
    got = np.asarray(call(function, rewards, episode), dtype=float)
    want = episode_returns(rewards, episode)
    if got.shape != want.shape:
        raise Incorrect(f"for 4 episodes expected 4 totals, got shape {got.shape}")
    if not np.allclose(got, want):
        raise Incorrect("the totals are off: each episode's return is the sum of the rewards "
                        "of the transitions that carry its index")


def _check_ari(answer):
    if not isinstance(answer, (int, float)) or isinstance(answer, bool):
        raise Incorrect("answer with a number")
    if abs(answer - 0.0) > 1e-9:
        raise Incorrect("think of what 'adjusted for chance' means for a clustering that is "
                        "unrelated to the labels")


EXERCISES = [
    Exercise(
        name="q1", prompt="Label each description in `labkit.exercises.nb01.KINDS` as 'supervised', "
                          "'unsupervised' or 'reinforcement' (a dict from description to kind).",
        checker=_check_kinds,
        hints=("Supervised data pairs each input with the answer; unsupervised has inputs only.",
               "Reinforcement-learning data is a sequence of (state, action, reward) from acting."),
        solution_code="answer = dict(labkit.exercises.nb01.KINDS)", reference=dict(KINDS)),
    Exercise(
        name="q2", prompt="Write `episode_returns(rewards, episode)` that returns the total reward of "
                          "every episode, given the flat `rewards` and `episode` arrays of a data set.",
        checker=_check_returns,
        hints=("The episode index of every transition tells you which total it adds to.",
               "`np.bincount` accepts `weights=`."),
        solution_code="def episode_returns(rewards, episode):\n"
                      "    return np.bincount(episode, weights=rewards)",
        reference=episode_returns),
    Exercise(
        name="q3", prompt="What is the expected adjusted Rand index of a clustering that assigns "
                          "clusters at random? (a number)",
        checker=_check_ari,
        hints=("ARI is rescaled so that a chance-level agreement scores a fixed value.",),
        solution_code="answer = 0.0", reference=0.0),
]
