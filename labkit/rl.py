"""Reinforcement-learning data: episodes of (state, action, reward, next state, done) from gymnasium."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .params import check_int
from .progress import progress

FIELDS = ("states", "actions", "rewards", "next_states", "terminated", "truncated", "episode")


def random_policy(rng: np.random.Generator, n_actions: int = 2) -> Callable:
    """A policy that picks an action uniformly at random."""
    return lambda state: int(rng.integers(n_actions))


def cartpole_heuristic(state) -> int:
    """Push the cart towards the side the pole is falling to: sign of angle + 0.5 x angular velocity."""
    return int(state[2] + 0.5 * state[3] > 0)


def keras_policy(model) -> Callable:
    """A greedy policy from a Keras model that maps a state to action logits or probabilities."""
    def act(state):
        scores = model(np.asarray(state, dtype="float32")[None], training=False)
        return int(np.argmax(np.asarray(scores)[0]))
    return act


def collect_episodes(policy: Callable, n_episodes: int, env_id: str = "CartPole-v1",
                     seed: int = 0, desc: str | None = None) -> dict:
    """Run ``policy`` for ``n_episodes`` and return every transition as flat arrays.

    Keys: ``states``, ``actions``, ``rewards``, ``next_states``, ``terminated`` (the episode ended
    in a failure state), ``truncated`` (it hit the time limit), ``episode`` (its index), and
    ``returns`` (one total reward per episode). Episode ``i`` is reset with seed ``seed + i``.
    """
    import gymnasium as gym

    n_episodes = check_int("n_episodes", n_episodes, minimum=1)
    env = gym.make(env_id)
    rows = {name: [] for name in FIELDS}
    returns = []
    for i in progress(range(n_episodes), desc=desc or f"{env_id} episodes"):
        state, _ = env.reset(seed=seed + i)
        total, done = 0.0, False
        while not done:
            action = policy(state)
            next_state, reward, terminated, truncated, _ = env.step(action)
            for name, value in zip(FIELDS, (state, action, reward, next_state,
                                            terminated, truncated, i)):
                rows[name].append(value)
            total += reward
            state, done = next_state, terminated or truncated
        returns.append(total)
    env.close()
    data = {name: np.asarray(values) for name, values in rows.items()}
    data["states"] = data["states"].astype("float32")
    data["next_states"] = data["next_states"].astype("float32")
    data["returns"] = np.asarray(returns, dtype="float64")
    return data


def evaluate_policy(policy: Callable, n_episodes: int = 10, env_id: str = "CartPole-v1",
                    seed: int = 10_000) -> float:
    """Mean return of ``policy`` over ``n_episodes`` fresh episodes (seeds apart from training)."""
    return float(collect_episodes(policy, n_episodes, env_id, seed, desc="evaluating")["returns"].mean())
