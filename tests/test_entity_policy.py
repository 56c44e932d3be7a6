"""The entity policy on its own: symmetric in the defenders' order, weights independent of the unit counts,
masked per unit type, SB3's update path, and checkpoints that load into other unit counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecMonitor

from mission_gym.config import load_config
from mission_gym.entity_policy import EntityLayout, EntityPolicy, _pair_mean_max, entity_layout
from mission_gym.policy import PAD_LOGIT
from mission_gym.ppo import MissionPPO, load_model
from mission_gym.sim.observation import DEFENDER_FEATURES
from mission_gym.spaces import action_space, observation_space
from mission_gym.vec_env import MissionVecEnv

THIRD_DEFENDER = {"unit_type": "DEF_UGV", "spawn": {"x": 80.0, "y": 80.0, "heading": 45.0},
                  "patrol_waypoints": [[70.0, 85.0], [85.0, 70.0]]}


def _with_defender(data):
    data["defenders"].append(THIRD_DEFENDER)


def _with_attacker(data):
    data["attackers"].append({"unit_type": "UGV_A", "spawn": {"x": 20.0, "y": 20.0, "heading": 45.0}})


def _policy(config, seed: int = 0) -> EntityPolicy:
    torch.manual_seed(seed)
    return EntityPolicy(observation_space(config), action_space(config), lambda _: 3e-4, layout=entity_layout(config))


def _log_probs(policy: EntityPolicy, obs: torch.Tensor) -> torch.Tensor:
    """(batch, attackers, widest action list) log-probabilities; a copy, as the distribution object is reused."""
    with torch.no_grad():
        return policy.get_distribution(obs).log_probs.clone()


def _observations(config, n: int = 64, seed: int = 0) -> torch.Tensor:
    """Real observations (arenas a few random decisions in), so that every feature has its usual range."""
    env = MissionVecEnv(n, config, seed=seed)
    obs = env.reset()
    rng = np.random.default_rng(seed)
    for _ in range(5):
        obs, *_ = env.step(np.stack([rng.integers(0, k, n) for k in env.action_space.nvec], axis=1))
    return torch.as_tensor(obs)


@pytest.fixture(scope="module")
def three_defenders(config_dir):
    return load_config(config_dir({"scenario.yaml": _with_defender}))


def test_defender_order_does_not_change_the_action_distributions_or_the_value(three_defenders):
    policy = _policy(three_defenders)
    obs = _observations(three_defenders)
    layout = EntityLayout.parse(entity_layout(three_defenders))
    permuted = obs.clone()
    order = [2, 0, 1]
    permuted[:, layout.defenders.reshape(-1)] = obs[:, layout.defenders[order].reshape(-1)]
    assert not torch.equal(permuted, obs)
    ours = _log_probs(policy, obs)
    torch.testing.assert_close(_log_probs(policy, permuted), ours, rtol=0, atol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(policy.predict_values(permuted), policy.predict_values(obs), rtol=0, atol=1e-5)
    # The defenders do matter: changing one (not reordering) changes the distributions.
    changed = obs.clone()
    changed[:, layout.defenders[0]] = obs[:, layout.defenders[1]]
    assert (_log_probs(policy, changed) - ours).abs().max() > 1e-4


@pytest.mark.parametrize("defenders", [1, 3])
def test_pair_pooling_equals_pooling_the_pair_tensor(defenders):
    """The pair summary is computed without the (batch, attackers, defenders, E) tensor: same values, same gradients."""
    torch.manual_seed(0)
    u = torch.randn(16, 4, 8, requires_grad=True)
    v = torch.randn(16, defenders, 8, requires_grad=True)
    pairs = torch.relu(u.unsqueeze(2) + v.unsqueeze(1))
    expected = torch.cat([pairs.mean(2), pairs.max(2).values], dim=-1)
    weights = torch.randn_like(expected)
    expected_grads = torch.autograd.grad((expected * weights).sum(), (u, v))
    actual = _pair_mean_max(u, v)
    torch.testing.assert_close(actual, expected)
    for got, want in zip(torch.autograd.grad((actual * weights).sum(), (u, v)), expected_grads):
        torch.testing.assert_close(got, want)


def test_no_weight_shape_depends_on_the_unit_counts(config_dir, three_defenders):
    base = load_config(config_dir())
    five_attackers = load_config(config_dir({"scenario.yaml": _with_attacker}))
    shapes = [{k: v.shape for k, v in _policy(c).state_dict().items()} for c in (base, three_defenders, five_attackers)]
    assert shapes[0] == shapes[1] == shapes[2]
    assert observation_space(base).shape != observation_space(three_defenders).shape


def test_each_attacker_is_masked_to_its_unit_types_action_list(config_dir):
    """UAV_A without SCAN has 9 actions among types with 10: its 10th slot never gets probability."""
    short = load_config(config_dir({"units_attackers.yaml": {"unit_types.UAV_A.actions":
                                                             ["STOP", "N", "NE", "E", "SE", "S", "SW", "W", "NW"]}}))
    policy = _policy(short)
    slot = [s.unit_type for s in short.scenario.attackers].index("UAV_A")
    log_probs = _log_probs(policy, _observations(short))
    assert torch.all(log_probs[:, slot, 9] < PAD_LOGIT / 2)
    assert torch.all(log_probs[:, slot - 1, 9] > PAD_LOGIT / 2)  # a 10-action type keeps its 10th
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(64, 4))


def test_without_defenders_the_policy_still_acts(config_dir):
    empty = load_config(config_dir({"scenario.yaml": {"defenders": []}}))
    policy = _policy(empty)
    with torch.no_grad():
        actions, values, log_prob = policy(_observations(empty, n=8))
    assert actions.shape == (8, 4) and torch.isfinite(values).all() and torch.isfinite(log_prob).all()
    assert policy.state_dict()["mlp_extractor.actor_encoder.defender.weight"].shape[1] == len(DEFENDER_FEATURES)


def test_entity_policy_takes_sb3s_update_and_its_checkpoint_loads_with_plain_sb3(config_dir, three_defenders, tmp_path):
    base = load_config(config_dir())
    env = VecMonitor(MissionVecEnv(4, base, seed=0))
    model = MissionPPO(EntityPolicy, env, n_steps=64, batch_size=64, n_epochs=1, seed=0, verbose=0,
                       policy_kwargs={"layout": entity_layout(base)})
    assert model._compiled_update_network() is None  # small minibatches of an MLP go to numba; this does not
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(256)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.policy.parameters()))
    model.save(tmp_path / "entity.zip")

    plain = PPO.load(tmp_path / "entity.zip", device="cpu")  # SB3 alone, mission_gym importable
    assert type(plain.policy) is EntityPolicy
    obs = _observations(base, n=8)
    torch.testing.assert_close(_log_probs(plain.policy, obs), _log_probs(model.policy, obs))

    # The project's loader rebuilds it for another scenario's units, with the same weights.
    moved = load_model(tmp_path / "entity.zip", three_defenders, device="cpu")
    assert moved.observation_space.shape == observation_space(three_defenders).shape
    assert moved.policy.mlp_extractor.latent_dim_pi == model.policy.mlp_extractor.latent_dim_pi
    for key, value in model.policy.state_dict().items():
        assert torch.equal(moved.policy.state_dict()[key], value), key
    actions, _ = moved.predict(_observations(three_defenders, n=8).numpy(), deterministic=True)
    assert actions.shape == (8, 4)
