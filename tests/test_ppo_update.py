"""The PPO that training runs: MissionPolicy's distribution and MissionPPO's compiled small-minibatch update give
what SB3's own classes give, and checkpoints load either way."""

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.distributions import MultiCategoricalDistribution
from stable_baselines3.common.utils import configure_logger
from stable_baselines3.common.vec_env import VecMonitor
from torch import nn

from mission_gym import ppo, ppo_kernel
from mission_gym.config import load_config
from mission_gym.policy import MissionPolicy, PaddedMultiCategorical
from mission_gym.ppo import LARGE_MINIBATCH, MissionPPO, load_model
from mission_gym.vec_env import MissionVecEnv

UNEQUAL_DIMS = [10, 4, 10, 7]


@pytest.mark.parametrize("dims", [[10, 10, 10, 10], UNEQUAL_DIMS])
def test_padded_distribution_matches_sb3(dims: list[int]) -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(257, sum(dims), generator=generator) * 3
    actions = torch.stack([torch.randint(0, n, (257,), generator=generator) for n in dims], dim=1)
    ours, sb3 = PaddedMultiCategorical(dims).proba_distribution(logits), MultiCategoricalDistribution(dims).proba_distribution(logits)
    torch.testing.assert_close(ours.log_prob(actions), sb3.log_prob(actions))
    torch.testing.assert_close(ours.entropy(), sb3.entropy())
    assert torch.equal(ours.mode(), sb3.mode())


def test_padded_distribution_samples_each_dimension_by_its_probabilities() -> None:
    logits = torch.randn(1, sum(UNEQUAL_DIMS), generator=torch.Generator().manual_seed(1)).repeat(40_000, 1)
    torch.manual_seed(2)
    samples = PaddedMultiCategorical(UNEQUAL_DIMS).proba_distribution(logits).sample()
    for dim, (n, chunk) in enumerate(zip(UNEQUAL_DIMS, logits[0].split(UNEQUAL_DIMS), strict=True)):
        counts = np.bincount(samples[:, dim].numpy(), minlength=n)
        assert len(counts) == n, f"dimension {dim} drew a padding slot"
        # 40,000 draws: each frequency within 5 standard errors of its probability.
        expected = chunk.softmax(0).numpy()
        assert np.all(np.abs(counts / 40_000 - expected) <= 5 * np.sqrt(expected * (1 - expected) / 40_000) + 1e-9)


def _new_model(config_dir: Path, **kwargs) -> MissionPPO:
    env = VecMonitor(MissionVecEnv(4, load_config(config_dir), seed=0))
    settings = {"n_steps": 64, "batch_size": 64, "n_epochs": 3, "ent_coef": 0.01, "learning_rate": 3e-3, "seed": 0,
                "policy_kwargs": {"net_arch": [32, 32], "optimizer_kwargs": {"fused": True}}} | kwargs
    return MissionPPO(MissionPolicy, env, verbose=0, **settings)


def _model(config_dir: Path, **kwargs) -> MissionPPO:
    """A 4-arena model after two updates (so Adam has state), with a third rollout collected."""
    model = _new_model(config_dir, **kwargs)
    _, callback = model._setup_learn(10**6, None)
    model.set_logger(configure_logger(0, None, "", False))
    for _ in range(2):
        model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=model.n_steps)
        model.train()
    model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=model.n_steps)
    return model


def _snapshot(model: MissionPPO) -> tuple:
    return copy.deepcopy((model.policy.state_dict(), model.policy.optimizer.state_dict(), model._n_updates,
                          model.rollout_buffer)), np.random.get_state()


def _restore(model: MissionPPO, snapshot: tuple) -> None:
    (params, optimizer, n_updates, buffer), random_state = copy.deepcopy(snapshot[0]), snapshot[1]
    model.policy.load_state_dict(params)
    # torch's load_state_dict keeps the given state tensors (no copy) and Adam then updates them in place
    model.policy.optimizer.load_state_dict(optimizer)
    model._n_updates, model.rollout_buffer = n_updates, buffer
    np.random.set_state(random_state)


def _update_both_ways(model: MissionPPO) -> tuple[dict, dict]:
    """(SB3's update, MissionPPO's update) from the same state: parameters, Adam state and logs of each."""
    snapshot = _snapshot(model)
    results = []
    for update in (PPO.train, MissionPPO.train):
        _restore(model, snapshot)
        update(model)
        results.append({"params": copy.deepcopy(model.policy.state_dict()),
                        "adam": copy.deepcopy(model.policy.optimizer.state_dict()["state"]),
                        "logs": dict(model.logger.name_to_value), "start": snapshot[0][0]})
    _restore(model, snapshot)
    return results[0], results[1]


def _assert_same_update(sb3: dict, ours: dict) -> None:
    for name, expected in sb3["params"].items():
        moved = (expected - sb3["start"][name]).abs().max().item()
        assert moved > 0 or name.endswith("bias"), f"{name} did not move; the comparison would prove nothing"
        # float32 sums in another order: differences far below the size of the update itself
        assert (ours["params"][name] - expected).abs().max().item() <= 1e-3 * moved + 1e-7, name
    for index, state in sb3["adam"].items():
        assert float(ours["adam"][index]["step"]) == float(state["step"])
        torch.testing.assert_close(ours["adam"][index]["exp_avg"], state["exp_avg"], rtol=1e-3, atol=1e-7)
        torch.testing.assert_close(ours["adam"][index]["exp_avg_sq"], state["exp_avg_sq"], rtol=1e-3, atol=1e-10)
    for key in ("train/entropy_loss", "train/policy_gradient_loss", "train/value_loss", "train/approx_kl",
                "train/clip_fraction", "train/loss", "train/n_updates"):
        assert ours["logs"][key] == pytest.approx(sb3["logs"][key], rel=1e-3, abs=1e-6), key


@pytest.mark.parametrize(("edit", "activation"), [
    (None, nn.Tanh),
    ({"units_attackers.yaml": {"unit_types.UAV_A.actions": ["STOP", "N", "E", "S"]}}, nn.ReLU),
], ids=["tanh", "relu-unequal-action-lists"])
def test_compiled_update_matches_sb3(config_dir, edit, activation) -> None:
    model = _model(config_dir(edit), policy_kwargs={"net_arch": [32, 32], "activation_fn": activation})
    assert model._compiled_update_network() is not None
    sb3, ours = _update_both_ways(model)
    assert sb3["logs"]["train/clip_fraction"] > 0, "the learning rate must be high enough that clipping happens"
    _assert_same_update(sb3, ours)


@pytest.mark.filterwarnings("ignore:You have specified a mini-batch size")  # SB3's warning: the point here
def test_compiled_update_matches_sb3_when_the_last_minibatch_is_partial(config_dir) -> None:
    model = _model(config_dir(), batch_size=96)  # 4 arenas x 64 steps = 256 rows: 96 + 96 + 64 per epoch
    assert model.n_steps * model.n_envs % model.batch_size and model._compiled_update_network() is not None
    sb3, ours = _update_both_ways(model)
    steps = {float(s["step"]) for s in sb3["adam"].values()}
    assert steps == {3 * 3 * 3}, "three updates of three epochs of three minibatches each, the last one partial"
    _assert_same_update(sb3, ours)


def test_training_says_once_which_update_runs(config_dir, capsys) -> None:
    path = config_dir()
    for model, words in ((_new_model(path), "numba small-minibatch kernel"),
                         (_new_model(path, n_steps=LARGE_MINIBATCH // 4, batch_size=LARGE_MINIBATCH), "SB3's update")):
        capsys.readouterr()
        model._setup_learn(10**6, None)
        assert capsys.readouterr().out.splitlines() == [f"PPO update: {model.update_path()}"]
        assert words in model.update_path()


def test_compiled_update_stops_early_at_the_same_minibatch(config_dir) -> None:
    model = _model(config_dir(), target_kl=0.002)
    sb3, ours = _update_both_ways(model)
    steps = {float(s["step"]) for s in sb3["adam"].values()}
    assert steps and max(steps) < 2 * 4 + 3 * 4, "target_kl should have stopped SB3's update early"
    _assert_same_update(sb3, ours)


def test_large_minibatches_and_other_networks_use_sb3s_update(config_dir) -> None:
    path = config_dir()
    assert _new_model(path)._compiled_update_network() is not None
    assert _new_model(path, n_steps=LARGE_MINIBATCH // 4, batch_size=LARGE_MINIBATCH)._compiled_update_network() is None
    assert _new_model(path, policy_kwargs={"net_arch": [32, 32], "activation_fn": nn.ELU})._compiled_update_network() is None
    assert _new_model(path, clip_range_vf=0.2)._compiled_update_network() is None


def test_load_model_reads_a_plain_sb3_checkpoint(config_dir, tmp_path) -> None:
    env = MissionVecEnv(2, load_config(config_dir()), seed=0)
    plain = PPO("MlpPolicy", env, n_steps=32, batch_size=64, seed=0, policy_kwargs={"net_arch": [16]})
    plain.save(tmp_path / "plain.zip")
    loaded = load_model(tmp_path / "plain.zip", device="cpu")
    assert isinstance(loaded, MissionPPO) and isinstance(loaded.policy, MissionPolicy)
    observations = np.stack([env.observation_space.sample() for _ in range(64)])
    assert np.array_equal(loaded.predict(observations, deterministic=True)[0],
                          plain.predict(observations, deterministic=True)[0])


def test_an_interrupt_while_the_update_is_copied_back_still_leaves_a_whole_update(config_dir, monkeypatch) -> None:
    model = _model(config_dir())
    sb3, _ = _update_both_ways(model)
    real_scatter, calls = ppo._scatter, []

    def interrupted_once(flat, tensors):
        real_scatter(flat, tensors[:1])  # the first layer is written, then Ctrl-C arrives
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        real_scatter(flat, tensors)

    monkeypatch.setattr(ppo, "_scatter", interrupted_once)
    with pytest.raises(KeyboardInterrupt):
        model.train()
    for name, expected in sb3["params"].items():
        moved = (expected - sb3["start"][name]).abs().max().item()
        assert (model.policy.state_dict()[name] - expected).abs().max().item() <= 1e-3 * moved + 1e-7, name


def test_kernel_tanh_is_float32_accurate() -> None:
    x = np.linspace(-12.0, 12.0, 100_001)
    error = np.abs(np.array([ppo_kernel._tanh(np.float32(v)) for v in x]) - np.tanh(x.astype(np.float32).astype(np.float64)))
    assert error.max() < 5e-7
