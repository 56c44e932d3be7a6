"""The PPO that `train_ppo` runs: SB3's PPO, with small-minibatch updates compiled by numba.

`MissionPPO` is SB3's PPO in every respect (hyperparameters, rollouts, logs, checkpoint files). Only `train`
differs, and only when the minibatch is small and the policy is a plain MLP actor-critic with Adam on the CPU:
then each epoch runs in `ppo_kernel.ppo_epoch` on flat copies of the parameters and Adam state, which are
written back to the torch modules and the optimizer afterwards. Every other case, and every large minibatch
(where torch's own kernels are efficient), runs SB3's update unchanged.
"""

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.distributions import MultiCategoricalDistribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.save_util import json_to_data, open_path
from stable_baselines3.common.torch_layers import FlattenExtractor, MlpExtractor
from stable_baselines3.common.utils import explained_variance
from torch import nn

from mission_gym import ppo_kernel as kernel
from mission_gym.config import MissionConfig
from mission_gym.entity_policy import EntityPolicy, entity_layout
from mission_gym.errors import MissionGymError
from mission_gym.guards import non_finite_parameter
from mission_gym.policy import MissionPolicy
from mission_gym.spaces import action_space, observation_space

# Minibatches this large go through torch: its batched kernels (and a second thread) beat the compiled loops.
LARGE_MINIBATCH = 1024


@dataclass(frozen=True)
class FlatNetwork:
    """The policy's linear layers (actor, then critic) as one flat float32 vector and a layer table."""

    linears: list[nn.Linear]
    n_actor: int
    relu: bool
    layers: np.ndarray  # per layer: weight offset, bias offset, outputs, inputs

    @classmethod
    def of(cls, policy: ActorCriticPolicy) -> "FlatNetwork | None":
        """The layout of an MLP actor-critic with tanh or ReLU hidden layers; None for any other network."""
        actor = _mlp_layers(policy.mlp_extractor.policy_net)
        critic = _mlp_layers(policy.mlp_extractor.value_net)
        if actor is None or critic is None or actor[1] != critic[1]:
            return None
        linears = [*actor[0], policy.action_net, *critic[0], policy.value_net]
        if not all(isinstance(layer, nn.Linear) and layer.bias is not None for layer in linears):
            return None
        table, offset = [], 0
        for layer in linears:
            table.append((offset, offset + layer.weight.numel(), layer.out_features, layer.in_features))
            offset += layer.weight.numel() + layer.bias.numel()
        return cls(linears, len(actor[0]) + 1, actor[1] is nn.ReLU, np.array(table, dtype=np.int64))

    def tensors(self) -> list[torch.Tensor]:
        """The parameters in flat order (each layer's weight, then its bias)."""
        return [t for layer in self.linears for t in (layer.weight, layer.bias)]

    def read(self, optimizer: torch.optim.Adam) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """Flat copies of the parameters and of their Adam moments, and Adam's step count."""
        states = [_adam_state(optimizer, p) for p in self.tensors()]
        return (_gather(self.tensors()), _gather([s["exp_avg"] for s in states]),
                _gather([s["exp_avg_sq"] for s in states]), float(states[0]["step"]))

    def write(self, optimizer: torch.optim.Adam, theta: np.ndarray, m: np.ndarray, v: np.ndarray, step: float) -> None:
        """Copy the updated vectors back. An interruption (Ctrl-C, an orchestrator's termination) in the middle
        completes the copy before it propagates: the final checkpoint must not hold half an update."""
        try:
            self._copy_back(optimizer, theta, m, v, step)
        except BaseException:
            self._copy_back(optimizer, theta, m, v, step)
            raise

    def _copy_back(self, optimizer: torch.optim.Adam, theta: np.ndarray, m: np.ndarray, v: np.ndarray,
                   step: float) -> None:
        states = [optimizer.state[p] for p in self.tensors()]
        _scatter(theta, self.tensors())
        _scatter(m, [s["exp_avg"] for s in states])
        _scatter(v, [s["exp_avg_sq"] for s in states])
        for state in states:
            state["step"].fill_(step)


def _gather(tensors: list[torch.Tensor]) -> np.ndarray:
    return np.concatenate([t.detach().cpu().numpy().ravel() for t in tensors]).astype(np.float32)


def _scatter(flat: np.ndarray, tensors: list[torch.Tensor]) -> None:
    offset = 0
    with torch.no_grad():
        for t in tensors:
            t.copy_(torch.from_numpy(flat[offset:offset + t.numel()]).view_as(t))
            offset += t.numel()


def _mlp_layers(net: nn.Module) -> tuple[list[nn.Linear], type] | None:
    """(linear layers, activation class) of a Sequential alternating Linear and one activation kind."""
    modules = list(net) if isinstance(net, nn.Sequential) else None
    if not modules or len(modules) % 2:
        return None
    linears, activations = modules[0::2], {type(m) for m in modules[1::2]}
    if len(activations) != 1 or not activations <= {nn.Tanh, nn.ReLU}:
        return None
    return linears, activations.pop()


class MissionPPO(PPO):
    """SB3's PPO whose small-minibatch updates run compiled (see the module docstring)."""

    def train(self) -> None:
        network = self._compiled_update_network()
        if network is None:
            super().train()
            return
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        clip_range = float(self.clip_range(self._current_progress_remaining))  # type: ignore[operator]
        optimizer = self.policy.optimizer
        group = optimizer.param_groups[0]
        theta, m, v, step = network.read(optimizer)
        data = _flat_rollout(self.rollout_buffer)
        totals, last = np.zeros(kernel.N_STATS), np.zeros(kernel.N_STATS)
        for _ in range(self.n_epochs):
            step = kernel.ppo_epoch(
                theta, m, v, step, network.layers, network.n_actor, network.relu, data["dims"],
                data["observations"], data["actions"], data["log_probs"], data["advantages"], data["returns"],
                np.random.permutation(len(data["returns"])),  # drawn as SB3's RolloutBuffer.get draws it
                self.batch_size, clip_range, self.ent_coef, self.vf_coef, self.max_grad_norm,
                self.target_kl or 0.0, group["lr"], *group["betas"], group["eps"], last)
            totals += last
            self._n_updates += 1
            if last[kernel.STAT_STOPPED]:
                break
        network.write(optimizer, theta, m, v, step)
        self._record_update(totals, last, clip_range)

    def _setup_learn(self, *args: Any, **kwargs: Any) -> tuple[int, BaseCallback]:
        """SB3's set-up at the start of learn(), then one line saying which update this training runs."""
        setup = super()._setup_learn(*args, **kwargs)
        print(f"PPO update: {self.update_path()}", flush=True)
        return setup

    def update_path(self) -> str:
        """Which update train() runs with the current settings, in words."""
        if self._compiled_update_network() is None:
            return f"SB3's update (minibatches of {LARGE_MINIBATCH:,} rows or more, a GPU, or another network)"
        return f"numba small-minibatch kernel (minibatches of {self.batch_size} rows)"

    def _compiled_update_network(self) -> FlatNetwork | None:
        """The network to update with the kernel, or None when SB3's update must run."""
        policy, optimizer = self.policy, self.policy.optimizer
        supported = (
            self.batch_size < LARGE_MINIBATCH and self.device.type == "cpu" and self.clip_range_vf is None
            and self.normalize_advantage and isinstance(policy, ActorCriticPolicy) and not policy.use_sde
            and isinstance(policy.action_dist, MultiCategoricalDistribution)
            and isinstance(self.observation_space, spaces.Box) and len(self.observation_space.shape) == 1
            and isinstance(policy.pi_features_extractor, FlattenExtractor)
            and isinstance(policy.vf_features_extractor, FlattenExtractor)
            and isinstance(policy.mlp_extractor, MlpExtractor)  # the entity policy takes SB3's update
            and type(optimizer) is torch.optim.Adam and len(optimizer.param_groups) == 1
            and not any(optimizer.param_groups[0][k] for k in ("amsgrad", "maximize", "weight_decay"))
        )
        network = FlatNetwork.of(policy) if supported else None
        if network is None or {id(p) for p in network.tensors()} != {id(p) for p in policy.parameters()}:
            return None
        return network

    def _record_update(self, totals: np.ndarray, last_epoch: np.ndarray, clip_range: float) -> None:
        """The logs SB3's PPO.train writes (approx_kl, like SB3's, is the last epoch's mean)."""
        count = totals[kernel.STAT_MINIBATCHES]
        buffer = self.rollout_buffer
        self.logger.record("train/entropy_loss", totals[kernel.STAT_ENTROPY_LOSS] / count)
        self.logger.record("train/policy_gradient_loss", totals[kernel.STAT_POLICY_LOSS] / count)
        self.logger.record("train/value_loss", totals[kernel.STAT_VALUE_LOSS] / count)
        self.logger.record("train/approx_kl", last_epoch[kernel.STAT_APPROX_KL] / last_epoch[kernel.STAT_MINIBATCHES])
        self.logger.record("train/clip_fraction", totals[kernel.STAT_CLIP_FRACTION] / count)
        self.logger.record("train/loss", last_epoch[kernel.STAT_LAST_LOSS])
        self.logger.record("train/explained_variance", explained_variance(buffer.values.flatten(), buffer.returns.flatten()))
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/clip_range", clip_range)


def _adam_state(optimizer: torch.optim.Adam, param: torch.Tensor) -> dict[str, torch.Tensor]:
    """The parameter's Adam state, created as torch creates it before a first step."""
    state = optimizer.state[param]
    if not state:
        fused = optimizer.param_groups[0]["fused"] or optimizer.param_groups[0]["capturable"]
        state["step"] = torch.zeros((), dtype=torch.float32) if fused else torch.tensor(0.0)
        state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
    return state


def _flat_rollout(buffer: RolloutBuffer) -> dict[str, np.ndarray]:
    """The rollout as flat arrays, in the order SB3's RolloutBuffer.get indexes (arena-major)."""

    def flat(array: np.ndarray, dtype: type) -> np.ndarray:
        return np.ascontiguousarray(array.swapaxes(0, 1).reshape(buffer.buffer_size * buffer.n_envs, -1), dtype=dtype)

    return {
        "observations": flat(buffer.observations, np.float32),
        "actions": flat(buffer.actions, np.int64),
        "log_probs": flat(buffer.log_probs, np.float32).ravel(),
        "advantages": flat(buffer.advantages, np.float32).ravel(),
        "returns": flat(buffer.returns, np.float32).ravel(),
        "dims": np.asarray(buffer.action_space.nvec, dtype=np.int64).ravel(),  # type: ignore[attr-defined]
    }


def load_model(path: str | Path, config: MissionConfig | None = None, **kwargs: Any) -> MissionPPO:
    """Load a PPO checkpoint as `MissionPPO`; `kwargs` go to `PPO.load`.

    An MLP checkpoint loads with `MissionPolicy`, including one saved with SB3's plain PPO and MlpPolicy (same
    parameters and optimizer state). An `EntityPolicy` checkpoint loads as saved, or, given `config`, rebuilt
    for that config's observation, action spaces and units: its weights do not depend on the unit counts.

    Raises:
        MissionGymError: the model holds NaN or infinity (it diverged; nothing it decides means anything).
    """
    saved = _saved_entries(path, ("policy_class", "policy_kwargs"))
    if not (isinstance(saved["policy_class"], type) and issubclass(saved["policy_class"], EntityPolicy)):
        custom: dict[str, Any] = {"policy_class": MissionPolicy}
    else:
        custom = {} if config is None else {
            "observation_space": observation_space(config), "action_space": action_space(config),
            "policy_kwargs": {**saved["policy_kwargs"], "layout": entity_layout(config)},
        }
    model = MissionPPO.load(path, custom_objects=custom, **kwargs)
    problem = non_finite_parameter(model.policy)
    if problem is not None:
        raise MissionGymError(f"{path}: {problem} (NaN or infinity): this model diverged in training and cannot "
                              "play; use an earlier checkpoint of its run")
    return model


def _saved_entries(path: str | Path, keys: tuple[str, ...]) -> dict[str, Any]:
    """Some entries of a checkpoint's saved data (its `data` JSON), without loading its parameters."""
    with open_path(path, "r", suffix="zip") as file, zipfile.ZipFile(file) as archive:
        data = json.loads(archive.read("data"))
    return json_to_data(json.dumps({key: data[key] for key in keys if key in data}))
