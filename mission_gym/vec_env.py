"""`MissionVecEnv`: the Stable-Baselines3 view of the batched core; one call steps every arena.

Arena i seeded with s behaves exactly like ``MissionGymEnv`` reset with seed s. Finished arenas reset
themselves the way SB3 expects: the returned observation is the new episode's first one and
``infos[i]["terminal_observation"]`` holds the last one. To keep the hot path cheap, an arena's info dict is
filled only when its episode ends (outcome, metrics, per-component totals); the per-step breakdown of every
arena is the array ``last_reward_components`` (columns in REWARD_COMPONENTS order).
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn, VecEnvWrapper,
)

from mission_gym.config import MissionConfig
from mission_gym.env import resolve_config
from mission_gym.render import render_frame
from mission_gym.rules import REWARD_COMPONENTS, Outcome
from mission_gym.sim import BatchedSim
from mission_gym.spaces import action_space, observation_space



class MissionVecEnv(VecEnv):
    """`n_envs` arenas of one config stepped together by the compiled kernel."""

    def __init__(self, n_envs: int, config: MissionConfig, seed: int | None = None,
                 render_mode: str | None = None) -> None:
        self.config = config
        self.sim = BatchedSim(config, n_envs)
        self.render_mode = render_mode
        self.feature_names = self.sim.feature_names
        super().__init__(n_envs, observation_space(config), action_space(config))
        self._actions = np.zeros((n_envs, len(config.scenario.attackers)), dtype=np.int64)
        self._first_seed = int(np.random.SeedSequence(seed).generate_state(1, dtype=np.uint64)[0] >> 2) if seed is None else seed
        self.seed(self._first_seed)

    @property
    def last_reward_components(self) -> np.ndarray:
        """The last step's weighted reward components, (n_envs, REWARD_COMPONENTS); the next step overwrites it."""
        return self.sim.reward_components

    def seed_arenas(self, seeds: Sequence[int]) -> None:
        """Give each arena its own seed for the next `reset()` (rather than `seed()`'s seed + i)."""
        if len(seeds) != self.num_envs:
            raise ValueError(f"need {self.num_envs} seeds, got {len(seeds)}")
        self._seeds = [int(s) for s in seeds]

    def reset(self) -> VecEnvObs:
        """Reset every arena (re-seeding those given a seed through `seed()`)."""
        for i in range(self.num_envs):
            if self._seeds[i] is not None:
                self.sim.seed(i, self._seeds[i])
            self.sim.reset(i)
        self._reset_seeds()
        return self.sim.observations.copy()

    def step_async(self, actions: np.ndarray) -> None:
        np.copyto(self._actions, np.asarray(actions).reshape(self._actions.shape), casting="unsafe")

    def step_wait(self) -> VecEnvStepReturn:
        sim = self.sim
        sim.step(self._actions)
        rewards = sim.rewards.astype(np.float32)
        dones = sim.finished
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(dones):
            infos[i] = self._finish_episode(i, sim.outcome(i))
        return sim.observations.copy(), rewards, dones, infos

    def _finish_episode(self, i: int, outcome: Outcome) -> dict[str, Any]:
        info = {
            "terminal_observation": self.sim.observations[i].copy(),
            "TimeLimit.truncated": not outcome.terminated,
            "outcome": outcome.label,
            "episode_metrics": self.sim.episode_metrics(i),
            "episode_reward_components": dict(zip(REWARD_COMPONENTS, self.sim.episode_reward_components[i].tolist())),
        }
        self.sim.reset(i)
        return info

    def close(self) -> None:
        """Nothing to release: the arenas live in this process's arrays."""

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [render_frame(self.sim, i) for i in range(self.num_envs)]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        method = getattr(self, method_name)
        return [method(*method_args, **method_kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]


def make_vec_env(n_envs: int, config_dir: str | Path | None = None, seed: int | None = None,
                 config: MissionConfig | None = None) -> MissionVecEnv:
    """A `MissionVecEnv` of `n_envs` arenas; arena i is seeded with seed + i (random when seed is None)."""
    return MissionVecEnv(n_envs, resolve_config(config_dir, config), seed=seed)


class ScaledRewards(VecEnvWrapper):
    """Rewards times a constant, for the learner only: wrap it around a VecMonitor, which then still records the
    unscaled episode returns that metrics, TensorBoard and evaluations report."""

    def __init__(self, venv: VecEnv, scale: float) -> None:
        super().__init__(venv)
        self.scale = scale

    def reset(self) -> VecEnvObs:
        return self.venv.reset()

    def step_wait(self) -> VecEnvStepReturn:
        observations, rewards, dones, infos = self.venv.step_wait()
        return observations, rewards * np.float32(self.scale), dones, infos
