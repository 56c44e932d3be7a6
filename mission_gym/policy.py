"""The actor-critic policy PPO trains: SB3's MlpPolicy with a MultiDiscrete distribution built for speed.

SB3's `MultiCategoricalDistribution` builds one torch `Categorical` per attacker and stacks their results, a
dozen small ops per attacker on every forward pass. With minibatches of 64 that bookkeeping cost more than the
network itself (measured: it halved rollout speed and took a third of each update). `PaddedMultiCategorical`
keeps every attacker's logits in one (batch, attackers, widest action list) tensor, so log-probabilities,
entropy and sampling are one op each whatever the number of attackers. The parameters are the same modules as
SB3's (`action_net` has the same shape), so checkpoints load either way.
"""

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.distributions import MultiCategoricalDistribution
from stable_baselines3.common.policies import ActorCriticPolicy

# Logit of the padding slots when attackers have different numbers of actions: finite, so that padding gets
# probability exactly 0 and contributes 0 (not 0 * -inf = nan) to the entropy.
PAD_LOGIT = -1e9


class PaddedMultiCategorical(MultiCategoricalDistribution):
    """Independent categorical distributions, one per action dimension, held in one padded tensor."""

    def __init__(self, action_dims: list[int]) -> None:
        super().__init__(action_dims)
        self.width = max(action_dims)
        self.log_probs = torch.empty(0)
        # Column of each (dimension, slot) in the flat logits; the extra last column holds PAD_LOGIT.
        index = np.full((len(action_dims), self.width), sum(action_dims))
        starts = np.cumsum([0, *action_dims[:-1]])
        for dim, (start, size) in enumerate(zip(starts, action_dims, strict=True)):
            index[dim, :size] = np.arange(start, start + size)
        self._padding = None if min(action_dims) == self.width else torch.as_tensor(index.reshape(-1))

    def proba_distribution(self, action_logits: torch.Tensor) -> "PaddedMultiCategorical":
        if self._padding is not None:
            pad = action_logits.new_full((len(action_logits), 1), PAD_LOGIT)
            action_logits = torch.cat([action_logits, pad], dim=1)[:, self._padding.to(action_logits.device)]
        self.log_probs = action_logits.view(len(action_logits), len(self.action_dims), self.width).log_softmax(-1)
        return self

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        return self.log_probs.gather(2, actions.long().unsqueeze(-1)).sum(dim=(1, 2))

    def entropy(self) -> torch.Tensor:
        return -(self.log_probs.exp() * self.log_probs).sum(dim=(1, 2))

    def sample(self) -> torch.Tensor:
        # Gumbel-max: argmax(log p - log E), E ~ Exp(1), is an exact draw, in a third of multinomial's time.
        return (self.log_probs - torch.empty_like(self.log_probs).exponential_().log()).argmax(dim=-1)

    def mode(self) -> torch.Tensor:
        return self.log_probs.argmax(dim=-1)


class MissionPolicy(ActorCriticPolicy):
    """SB3's actor-critic MLP policy; a MultiDiscrete action space gets `PaddedMultiCategorical`."""

    def _build(self, lr_schedule: Any) -> None:
        if isinstance(self.action_space, spaces.MultiDiscrete):
            self.action_dist = PaddedMultiCategorical([int(n) for n in self.action_space.nvec])
        super()._build(lr_schedule)

