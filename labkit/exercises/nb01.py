"""Exercises of notebook 01 — dataset types (11.1.1).

q3 builds the policy network that the notebook's behaviour cloning trains
(``make_policy = ex.q3.use(policy_network, "policy network")``).
"""
import numpy as np

from . import Exercise, Incorrect, call

# the five descriptions are written out in the notebook cell; the answer key stays here
_KINDS = {
    "photos of digits, each with the digit it shows": "supervised",
    "customer purchase histories, to find groups of similar customers": "unsupervised",
    "a robot's sensor readings, motor commands and rewards, step by step": "reinforcement",
    "house features and sale prices": "supervised",
    "news articles with no tags, to discover topics": "unsupervised",
}
DESCRIPTIONS = tuple(_KINDS)


def _check_kinds(answer):
    if not isinstance(answer, dict) or set(answer) != set(_KINDS):
        raise Incorrect("answer with a dict that has exactly the five descriptions as keys")
    allowed = {"supervised", "unsupervised", "reinforcement"}
    bad = [v for v in answer.values() if v not in allowed]
    if bad:
        raise Incorrect(f"use only the words {sorted(allowed)}; got {bad[0]!r}")
    wrong = sum(answer[k] != v for k, v in _KINDS.items())
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


def policy_network():
    """Reference: state (4 numbers) -> 32 ReLU units -> 2 action logits."""
    import keras

    return keras.Sequential([keras.Input(shape=(4,)),
                             keras.layers.Dense(32, activation="relu"),
                             keras.layers.Dense(2)], name="bc_policy")


def _check_policy(function):
    import keras

    model = call(function)
    if not isinstance(model, keras.Model):
        raise Incorrect("return a Keras model, e.g. keras.Sequential([keras.Input(shape=(4,)), ...])")
    if tuple(model.input_shape) != (None, 4):
        raise Incorrect(f"a CartPole state has 4 numbers: the input shape should be (None, 4), "
                        f"not {model.input_shape}")
    if tuple(model.output_shape) != (None, 2):
        raise Incorrect(f"one output per action (push left, push right): the output shape should be "
                        f"(None, 2), not {model.output_shape}")
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    last = getattr(dense[-1].activation, "__name__", "") if dense else ""
    if last != "linear":
        raise Incorrect(f"the last layer applies {last!r}: the loss below works on logits "
                        "(from_logits=True), so leave the last Dense layer without an activation")
    hidden = [layer for layer in dense[:-1]
              if getattr(layer.activation, "__name__", "") not in ("linear", "")]
    if not hidden:
        raise Incorrect("put one hidden Dense layer with a non-linear activation (32 units, 'relu') "
                        "between the input and the output")


EXERCISES = [
    Exercise(
        name="q1", prompt="Label each of the five data sets in the cell as 'supervised', "
                          "'unsupervised' or 'reinforcement' (a dict from description to kind).",
        checker=_check_kinds,
        hints=("Supervised data pairs each input with the answer; unsupervised has inputs only.",
               "Reinforcement-learning data is a sequence of (state, action, reward) from acting."),
        solution_code="answer_q1 = {\n" + "".join(f"    {k!r}: {v!r},\n" for k, v in _KINDS.items()) + "}",
        reference=dict(_KINDS)),
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
        name="q3", prompt="Write `policy_network()`: a Keras model from a CartPole state (4 numbers) "
                          "through one hidden layer of 32 ReLU units to one logit per action (2).",
        checker=_check_policy,
        hints=("`keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(...), ...])`.",
               "The loss takes logits: the last Dense layer has 2 units and no activation."),
        solution_code="def policy_network():\n"
                      "    return keras.Sequential([keras.Input(shape=(4,)),\n"
                      "                             keras.layers.Dense(32, activation=\"relu\"),\n"
                      "                             keras.layers.Dense(2)])",
        reference=policy_network),
]
