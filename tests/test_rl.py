"""Reinforcement-learning episodes: structure and consistency of the recorded transitions."""
import numpy as np
import pytest

from labkit import rl


def test_episodes_are_consistent():
    data = rl.collect_episodes(rl.random_policy(np.random.default_rng(0)), 3, seed=0)
    n = len(data["actions"])
    assert all(len(data[k]) == n for k in rl.FIELDS)
    assert data["states"].shape == (n, 4) and set(np.unique(data["actions"])) <= {0, 1}
    # each next_state is the following state within an episode
    same = data["episode"][1:] == data["episode"][:-1]
    assert np.allclose(data["next_states"][:-1][same], data["states"][1:][same])
    # exactly one end flag per episode, at its last step
    ends = data["terminated"] | data["truncated"]
    assert ends.sum() == 3 and ends[-1]
    assert np.allclose(np.bincount(data["episode"], weights=data["rewards"]), data["returns"])


def test_heuristic_beats_random_by_far():
    heuristic = rl.evaluate_policy(rl.cartpole_heuristic, 3)
    random = rl.evaluate_policy(rl.random_policy(np.random.default_rng(0)), 3)
    assert heuristic >= 400 and random < 60


def test_collection_is_reproducible():
    a = rl.collect_episodes(rl.cartpole_heuristic, 2, seed=5)
    b = rl.collect_episodes(rl.cartpole_heuristic, 2, seed=5)
    assert np.array_equal(a["states"], b["states"])


def test_bad_episode_count():
    with pytest.raises(ValueError, match="n_episodes"):
        rl.collect_episodes(rl.cartpole_heuristic, 0)
