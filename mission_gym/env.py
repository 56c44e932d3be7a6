"""`MissionGymEnv`: the Gymnasium view of one arena of the batched core."""

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from mission_gym.config import MissionConfig, load_config
from mission_gym.render import render_frame
from mission_gym.rules import REWARD_COMPONENTS, Outcome
from mission_gym.sim import BatchedSim
from mission_gym.spaces import action_space, observation_space

DEFAULT_CONFIG_DIR = Path("configs")


def resolve_config(config_dir: str | Path | None = None, config: MissionConfig | None = None) -> MissionConfig:
    """The given config, or the one loaded from `config_dir` (default ``configs/`` in the working directory)."""
    if config is not None:
        return config
    return load_config(DEFAULT_CONFIG_DIR if config_dir is None else config_dir)


class MissionGymEnv(gym.Env[np.ndarray, np.ndarray]):
    """Capture the zone: command a team of attackers past scripted defenders into a capture zone.

    ## Action space
    ``MultiDiscrete`` with one entry per attacker, sized by its unit type's ``actions`` list
    (units_attackers.yaml): STOP, the 8 compass moves N..NW, and TAG / SCAN where the type lists them.
    A move command sets the heading and full speed; a low-level controller turns and accelerates within the
    unit's limits. TAG stops and tags the nearest enemy in range, cone and line of sight once the cooldown
    allows; SCAN stops and looks all around, further, for one decision.

    ## Observation space
    A ``Box`` in [-1, 1]; ``feature_names`` lists what each entry is. Per attacker: position, heading, speed,
    integrity, cooldowns, airborne, alive, the objective's offset, the direction of the shortest route to it,
    in-zone and 8 lidar distances. Per defender: last known position relative to the objective, freshness of
    that sighting, integrity, alive. Then the objective's position, capture progress and time remaining.
    Changing the number of attackers or defenders changes the shape.

    ## Rewards
    The sum of the components of reward.yaml, each a raw quantity times its weight (0 when disabled);
    ``info["reward_components"]`` gives the breakdown, which sums to the reward.

    ## Episode end
    ``terminated`` on capture (15 s cumulative presence of a live attacker in the zone) and when every
    attacker is disabled; ``truncated`` at the time limit and on stagnation. ``info["outcome"]`` is one of
    captured, all_disabled, timeout, stalled (running before the end); the last step's info also carries
    ``episode_metrics`` and the episode's per-component totals ``episode_reward_components``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, config_dir: str | Path | None = None, render_mode: str | None = None,
                 config: MissionConfig | None = None, sensor_cones: bool = False) -> None:
        """`sensor_cones`: rgb_array frames also show the defenders' sensor coverage."""
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode {render_mode!r} is not supported; use one of {self.metadata['render_modes']}")
        self.config = resolve_config(config_dir, config)
        self.render_mode = render_mode
        self.sensor_cones = sensor_cones
        self.sim = BatchedSim(self.config, 1)
        self.observation_space = observation_space(self.config)
        self.action_space = action_space(self.config)
        self.feature_names = self.sim.feature_names
        self._seeded = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode; a seed restarts the arena's generator, otherwise it continues."""
        super().reset(seed=seed)
        if seed is not None or not self._seeded:
            self.sim.seed(0, seed if seed is not None else int(self.np_random.integers(2**63)))
            self._seeded = True
        self.sim.reset(0)
        return self.sim.observations[0].copy(), {"outcome": Outcome.RUNNING.label}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Advance one decision (action_repeat physics ticks)."""
        sim = self.sim
        sim.step(action)
        outcome = sim.outcome(0)
        info: dict[str, Any] = {"outcome": outcome.label,
                                "reward_components": dict(zip(REWARD_COMPONENTS, sim.reward_components[0].tolist()))}
        if outcome is not Outcome.RUNNING:
            info["episode_metrics"] = sim.episode_metrics(0)
            info["episode_reward_components"] = dict(zip(REWARD_COMPONENTS, sim.episode_reward_components[0].tolist()))
        terminated, truncated = outcome.terminated, outcome.truncated
        return sim.observations[0].copy(), float(sim.rewards[0]), terminated, truncated, info

    def render(self) -> np.ndarray | None:
        """A top-down RGB frame when render_mode is "rgb_array"."""
        if self.render_mode == "rgb_array":
            return render_frame(self.sim, 0, sensor_cones=self.sensor_cones)
        return None
