"""The entity policy: one set of weights for any number of attackers and defenders.

The MLP reads the observation as one vector, so every weight's shape follows the unit counts and a policy
cannot outlive a change of scenario. This policy reads the same vector as a set of entities, through the
env's feature names (``attacker_<i>.<feature>``, ``defender_<j>.<feature>``, the rest belongs to the
objective):

- each entity is encoded by a small layer shared by its kind: one per attacker unit type, one for every
  defender, one for the objective (``E`` = ``embed_dim`` wide);
- each attacker meets each defender through an additive pair layer, ``relu(U a_i + V d_j)``, pooled over the
  defenders by mean and max (a cheap stand-in for attention: it tells each attacker about the defenders
  relative to itself), and sees its team through the mean and max of every attacker's embedding;
- per attacker, [own, defender summary (2E), team (2E), objective] goes through hidden layers (``net_arch``)
  shared by every attacker, then an output layer shared by its unit type, masked to that type's action list;
- the critic has encoders of its own (value errors are large; they must not steer the actor's features) and
  pools over every entity: mean and max of the attackers' and of the defenders' embeddings, and the objective.

Mean and max pooling are symmetric, so reordering defenders (or same-type attackers) permutes nothing but
the matching actions; no weight's shape depends on a count, so a checkpoint loads into a policy built for
another scenario with the same unit types and action lists (``entity_layout`` of the new config). Every
index tensor is built once from the feature names; the forward pass is a fixed set of batched tensor ops.
"""

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy
from torch import nn

from mission_gym.config import MissionConfig
from mission_gym.policy import PAD_LOGIT, PaddedMultiCategorical
from mission_gym.sim.observation import DEFENDER_FEATURES, feature_names

EMBED_DIM = 32
DEFAULT_NET_ARCH = [64]
_UNIT_FEATURE = re.compile(r"(attacker|defender)_(\d+)\.(.+)")


def entity_layout(config: MissionConfig) -> dict[str, Any]:
    """What the policy needs to know of a scenario, as plain JSON (it is saved in the checkpoint's
    ``policy_kwargs``): the observation's feature names, each attacker's unit type, each type's actions."""
    types = [slot.unit_type for slot in config.scenario.attackers]
    return {"feature_names": feature_names(config), "attacker_types": types,
            "actions": {t: list(config.attacker_types[t].actions) for t in sorted(set(types))}}


@dataclass(frozen=True)
class EntityLayout:
    """Positions of each entity's features in the observation vector, and each attacker's unit type index."""

    attackers: np.ndarray  # (attackers, attacker features)
    defenders: np.ndarray  # (defenders, defender features)
    objective: np.ndarray  # (objective features,)
    attacker_type: np.ndarray  # (attackers,) index into `types`
    types: tuple[str, ...]
    action_counts: tuple[int, ...]  # per type

    @property
    def width(self) -> int:
        """The longest action list: every attacker's logits are padded to it."""
        return max(self.action_counts)

    @classmethod
    def parse(cls, layout: dict[str, Any]) -> "EntityLayout":
        """Index the feature names; ValueError when units of a kind do not all have the same features."""
        names = list(layout["feature_names"])
        units: dict[str, dict[int, list[tuple[str, int]]]] = {"attacker": {}, "defender": {}}
        objective = []
        for position, name in enumerate(names):
            match = _UNIT_FEATURE.fullmatch(name)
            if match is None:
                objective.append(position)
            else:
                units[match[1]].setdefault(int(match[2]), []).append((match[3], position))
        types = tuple(sorted(layout["actions"]))
        attacker_type = np.array([types.index(t) for t in layout["attacker_types"]], dtype=np.int64)
        attackers = _unit_index(units["attacker"], "attacker", 0)
        if len(attackers) != len(attacker_type):
            raise ValueError(f"{len(attackers)} attackers in the feature names, {len(attacker_type)} attacker types")
        # Without defenders, the (empty) defender index keeps the env's width: the weights must still transfer.
        defenders = _unit_index(units["defender"], "defender", len(DEFENDER_FEATURES))
        return cls(attackers, defenders, np.array(objective, dtype=np.int64), attacker_type, types,
                   tuple(len(layout["actions"][t]) for t in types))


def _unit_index(units: dict[int, list[tuple[str, int]]], kind: str, empty_width: int) -> np.ndarray:
    """(units, features) positions; every unit must list the same features in the same order."""
    if not units:
        return np.zeros((0, empty_width), dtype=np.int64)
    if sorted(units) != list(range(len(units))):
        raise ValueError(f"{kind} numbers in the feature names are not 0..{len(units) - 1}: {sorted(units)}")
    first = [feature for feature, _ in units[0]]
    for i, features in units.items():
        if [feature for feature, _ in features] != first:
            raise ValueError(f"{kind}_{i} has features {[f for f, _ in features]}, {kind}_0 has {first}")
    return np.array([[position for _, position in units[i]] for i in range(len(units))], dtype=np.int64)


class TypedLinear(nn.Module):
    """A linear layer with one weight matrix per unit type; row i of the input uses its unit's type."""

    def __init__(self, n_types: int, n_in: int, n_out: int, unit_type: np.ndarray) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_types, n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_types, n_out))
        # Not saved: it follows the scenario's attackers, rebuilt from the layout whenever the policy is built.
        self.register_buffer("unit_type", torch.as_tensor(unit_type), persistent=False)
        self.reset(math.sqrt(2))

    def reset(self, gain: float) -> None:
        """Orthogonal weights (each type's matrix on its own), zero bias: SB3's initialization."""
        for matrix in self.weight.data:
            nn.init.orthogonal_(matrix.T, gain=gain)
        self.bias.data.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, units, n_in) -> (batch, units, n_out)."""
        return torch.einsum("bui,uio->buo", x, self.weight[self.unit_type]) + self.bias[self.unit_type]


Entities = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class EntityEncoder(nn.Module):
    """Each entity's embedding, by its kind: the entities' features (attackers (B, A, F_a), defenders (B, D, F_d),
    objective (B, F_o)) -> (attackers (B, A, E), defenders (B, D, E), objective (B, E))."""

    def __init__(self, layout: EntityLayout, embed: int) -> None:
        super().__init__()
        self.attacker = TypedLinear(len(layout.types), layout.attackers.shape[1], embed, layout.attacker_type)
        self.defender = nn.Linear(layout.defenders.shape[1], embed)
        self.objective = nn.Linear(len(layout.objective), embed)

    def forward(self, entities: Entities) -> Entities:
        attackers, defenders, objective = entities
        return (torch.relu(self.attacker(attackers)), torch.relu(self.defender(defenders)),
                torch.relu(self.objective(objective)))


def _mean_max(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Mean and max over `dim` (zeros when it is empty: a scenario without defenders)."""
    if x.shape[dim] == 0:
        return x.new_zeros(*x.shape[:dim], *x.shape[dim + 1:-1], 2 * x.shape[-1])
    # max(dim) rather than amax: its backward scatters to one index instead of masking every tie.
    return torch.cat([x.mean(dim), x.max(dim).values], dim=-1)


def _pair_mean_max(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Mean and max of relu(u_i + v_j) over the defenders j, per attacker i: u (B, A, E), v (B, D, E) -> (B, A, 2E).

    The same numbers as pooling the (B, A, D, E) pair tensor, at two thirds of its cost (measured): relu is
    increasing, so the max is relu(u_i + max_j v_j), and the mean adds one defender at a time (a handful)."""
    if v.shape[1] == 0:
        return u.new_zeros(*u.shape[:-1], 2 * u.shape[-1])
    total = torch.relu(u + v[:, :1])
    for j in range(1, v.shape[1]):
        total = total + torch.relu(u + v[:, j:j + 1])
    return torch.cat([total / v.shape[1], torch.relu(u + v.max(1, keepdim=True).values)], dim=-1)


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), nn.Tanh()]
    return nn.Sequential(*layers)


class EntityNetwork(nn.Module):
    """The policy's `mlp_extractor`: the actor's latent is every attacker's padded logits, flattened
    (batch, attackers x widest action list); the critic's is its pooled hidden state.

    The actor's first hidden layer is split in two: the attacker's own part [embedding, defender summary] per
    attacker, and the team's part [team mean and max, objective] once per observation, added. This is the
    same function as one layer on the concatenation, without copying the team's part to every attacker."""

    def __init__(self, layout: EntityLayout, embed: int, net_arch: list[int]) -> None:
        super().__init__()
        for name in ("attackers", "defenders", "objective"):
            self.register_buffer(f"{name}_index", torch.as_tensor(getattr(layout, name)), persistent=False)
        self.actor_encoder = EntityEncoder(layout, embed)
        self.pair_attacker = nn.Linear(embed, embed, bias=False)
        self.pair_defender = nn.Linear(embed, embed)
        self.own_input = nn.Linear(3 * embed, net_arch[0])
        self.team_input = nn.Linear(3 * embed, net_arch[0], bias=False)
        self.actor_hidden = _mlp(net_arch)
        self.actor_head = TypedLinear(len(layout.types), net_arch[-1], layout.width, layout.attacker_type)
        mask = torch.tensor([[0.0 if k < n else PAD_LOGIT for k in range(layout.width)] for n in layout.action_counts])
        self.register_buffer("action_mask", mask[torch.as_tensor(layout.attacker_type)], persistent=False)
        self.critic_encoder = EntityEncoder(layout, embed)
        self.critic_hidden = _mlp([5 * embed, *net_arch])
        self.latent_dim_pi = len(layout.attacker_type) * layout.width
        self.latent_dim_vf = net_arch[-1]

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        entities = self.entities(obs)  # gathered once for both heads
        return self._actor(entities), self._critic(entities)

    def forward_actor(self, obs: torch.Tensor) -> torch.Tensor:
        return self._actor(self.entities(obs))

    def forward_critic(self, obs: torch.Tensor) -> torch.Tensor:
        return self._critic(self.entities(obs))

    def entities(self, obs: torch.Tensor) -> Entities:
        """The observation's features, by entity (see `EntityEncoder`)."""
        return obs[:, self.attackers_index], obs[:, self.defenders_index], obs[:, self.objective_index]

    def _actor(self, entities: Entities) -> torch.Tensor:
        attackers, defenders, objective = self.actor_encoder(entities)
        pairs = _pair_mean_max(self.pair_attacker(attackers), self.pair_defender(defenders))
        own = self.own_input(torch.cat([attackers, pairs], dim=-1))
        team = self.team_input(torch.cat([_mean_max(attackers, dim=1), objective], dim=-1))
        hidden = self.actor_hidden(torch.tanh(own + team.unsqueeze(1)))
        return (self.actor_head(hidden) + self.action_mask).flatten(1)

    def _critic(self, entities: Entities) -> torch.Tensor:
        attackers, defenders, objective = self.critic_encoder(entities)
        pooled = torch.cat([_mean_max(attackers, dim=1), _mean_max(defenders, dim=1), objective], dim=-1)
        return self.critic_hidden(pooled)


class EntityPolicy(ActorCriticPolicy):
    """SB3 actor-critic whose networks are an `EntityNetwork` built from `layout` (see `entity_layout`);
    `net_arch` gives the hidden layers of the per-attacker head and of the value head."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, lr_schedule: Any,
                 layout: dict[str, Any], net_arch: list[int] | None = None, embed_dim: int = EMBED_DIM,
                 **kwargs: Any) -> None:
        self.layout, self.embed_dim = layout, embed_dim  # _build, called by the parent's __init__, reads them
        super().__init__(observation_space, action_space, lr_schedule, net_arch=list(net_arch or DEFAULT_NET_ARCH),
                         **kwargs)

    def _build(self, lr_schedule: Any) -> None:
        layout = EntityLayout.parse(self.layout)
        _check_actions(layout, self.action_space)
        self.action_dist = PaddedMultiCategorical([layout.width] * len(layout.attacker_type))
        self.mlp_extractor = EntityNetwork(layout, self.embed_dim, list(self.net_arch))
        self.action_net = nn.Identity()
        self.value_net = nn.Linear(self.mlp_extractor.latent_dim_vf, 1)
        if self.ortho_init:
            self.mlp_extractor.apply(lambda m: self.init_weights(m, gain=math.sqrt(2)))
            self.mlp_extractor.actor_head.reset(0.01)
            self.init_weights(self.value_net, gain=1.0)
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    @staticmethod
    def init_weights(module: nn.Module, gain: float = 1) -> None:
        """SB3's orthogonal initialization, extended to the per-type layers."""
        if isinstance(module, TypedLinear):
            module.reset(gain)
        else:
            ActorCriticPolicy.init_weights(module, gain)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "layout": self.layout, "embed_dim": self.embed_dim}


def _check_actions(layout: EntityLayout, action_space: spaces.Space) -> None:
    """Each attacker's action count must be its type's: the env and the layout describe the same scenario."""
    expected = [layout.action_counts[t] for t in layout.attacker_type]
    actual = [int(n) for n in getattr(action_space, "nvec", [])]
    if actual != expected:
        raise ValueError(f"action space {actual} does not match the layout's attackers' action lists {expected}")
