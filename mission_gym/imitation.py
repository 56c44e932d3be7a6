"""Warm start: before PPO, teach a fresh policy to imitate the scripted baseline.

PPO from a random policy spends millions of steps discovering that the zone is worth reaching. Behaviour
cloning on the baseline's decisions (cross-entropy on its actions) plus a value fit on the discounted returns
it earns gives PPO a policy that already captures, so training spends its budget improving on it.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from stable_baselines3 import PPO

from mission_gym.baseline import ScriptedAttackerPolicy
from mission_gym.config import MissionConfig
from mission_gym.vec_env import MissionVecEnv

MINIBATCH = 512
EPOCHS = 4


@dataclass(frozen=True)
class Demonstrations:
    """Baseline decisions: observations, actions and the discounted return that followed each."""

    observations: np.ndarray
    actions: np.ndarray
    returns: np.ndarray


def record_baseline(config: MissionConfig, samples: int, n_envs: int, gamma: float, seed: int | None,
                    reward_scale: float = 1.0, progress: Callable[[float], None] | None = None) -> Demonstrations:
    """Play the baseline in `n_envs` arenas until `samples` decisions are recorded; the returns are those of
    rewards times `reward_scale`, the scale PPO will learn values on; `progress` is told each step's share of
    the recording."""
    env = MissionVecEnv(n_envs, config, seed=seed)
    policy = ScriptedAttackerPolicy(config)
    steps = max(1, samples // n_envs)
    observations = np.zeros((steps, n_envs, env.observation_space.shape[0]), dtype=np.float32)
    actions = np.zeros((steps, n_envs, len(env.action_space.nvec)), dtype=np.int64)
    rewards = np.zeros((steps, n_envs), dtype=np.float32)
    dones = np.zeros((steps, n_envs), dtype=bool)
    obs = env.reset()
    for t in range(steps):
        observations[t] = obs
        actions[t], _ = policy.predict(obs)
        obs, rewards[t], dones[t], _ = env.step(actions[t])
        if progress is not None:
            progress(1.0 / steps)
    returns = np.zeros_like(rewards)
    following = np.zeros(n_envs, dtype=np.float32)  # unfinished episodes are cut off here, not bootstrapped
    for t in reversed(range(steps)):
        following = reward_scale * rewards[t] + gamma * following * ~dones[t]
        returns[t] = following
    flat = steps * n_envs
    return Demonstrations(observations.reshape(flat, -1), actions.reshape(flat, -1), returns.reshape(flat))


def imitate(model: PPO, demos: Demonstrations, epochs: int = EPOCHS, seed: int = 0,
            progress: Callable[[float], None] | None = None) -> dict[str, float]:
    """Fit the policy to the demonstrated actions and the value head to their returns; returns final losses.
    `progress` is told each minibatch's share of an epoch."""
    policy = model.policy
    device = policy.device
    obs = torch.as_tensor(demos.observations, device=device)
    actions = torch.as_tensor(demos.actions, device=device)
    returns = torch.as_tensor(demos.returns, device=device)
    order = np.random.default_rng(seed)
    policy.set_training_mode(True)
    action_loss = value_loss = torch.zeros(())
    batches = max(1, len(obs) // MINIBATCH)
    for _ in range(epochs):
        for batch in np.array_split(order.permutation(len(obs)), batches):
            index = torch.as_tensor(batch, device=device)
            values, log_prob, _ = policy.evaluate_actions(obs[index], actions[index])
            action_loss = -log_prob.mean()
            value_loss = torch.nn.functional.mse_loss(values.flatten(), returns[index])
            policy.optimizer.zero_grad()
            # No joint gradient clipping here: the value loss (returns in the hundreds) would own the clipped
            # norm and starve the policy; Adam scales each parameter's step on its own.
            (action_loss + value_loss).backward()
            policy.optimizer.step()
            if progress is not None:
                progress(1.0 / batches)
    policy.set_training_mode(False)
    return {"imitation_action_loss": action_loss.item(), "imitation_value_loss": value_loss.item()}
