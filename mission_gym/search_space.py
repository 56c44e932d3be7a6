"""The hyperparameters a branch search may change, their ranges, and how a member samples and perturbs them.

A search space is a YAML file (the documented default is ``configs/search.yaml``)::

    parameters:
      learning_rate: {low: 1.0e-5, high: 1.0e-3, scale: log, perturb: [0.8, 1.25]}
      ent_coef: {low: 0.0, high: 0.01, scale: linear, perturb: [0.8, 1.25]}
    sequential: {alpha: 0.05, beta: 0.1, margin: 0.2, group: 10}

Round 0 samples each parameter uniformly on its scale; an exploit step multiplies each by one of its perturbation
factors, drawn at random, and clips it to the range (PBT's "explore"). Integer parameters are rounded.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mission_gym.config import YamlLoader
from mission_gym.errors import ConfigError, MissionGymError
from mission_gym.sequential import SequentialDesign

# PPO settings a branch may change; the network's shape (net_arch) is fixed for a lineage.
SEARCHABLE = {"learning_rate": float, "n_steps": int, "batch_size": int, "n_epochs": int, "gamma": float,
              "gae_lambda": float, "clip_range": float, "ent_coef": float, "vf_coef": float, "max_grad_norm": float}

Finite = Annotated[float, Field(allow_inf_nan=False)]
Factor = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class ParameterRange(BaseModel):
    """One searched hyperparameter: its range, the scale it is sampled on, and its perturbation factors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: Finite
    high: Finite
    scale: Literal["log", "linear"] = "linear"
    perturb: tuple[Factor, ...] = Field((0.8, 1.25), min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> ParameterRange:
        if self.low > self.high:
            raise ValueError(f"low {self.low} is above high {self.high}")
        if self.scale == "log" and self.low <= 0:
            raise ValueError(f"a log scale needs low > 0 (got {self.low}); use scale: linear")
        return self


class SequentialSettings(BaseModel):
    """The sequential test deciding which members lose a round (see mission_gym.sequential)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alpha: float = 0.05
    beta: float = 0.1
    margin: float = 0.2
    group: int = 10

    def design(self) -> SequentialDesign:
        """The test's design (its own checks name any value out of range)."""
        return SequentialDesign(self.alpha, self.beta, self.margin, self.group)


class SearchSpace(BaseModel):
    """A whole search-space file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    parameters: dict[str, ParameterRange] = Field(min_length=1)
    sequential: SequentialSettings = SequentialSettings()

    def sample(self, rng: random.Random) -> dict[str, float | int]:
        """Round 0: every parameter drawn uniformly on its scale."""
        return {name: _cast(name, _uniform(spec, rng)) for name, spec in self.parameters.items()}

    def perturb(self, values: dict[str, float | int], rng: random.Random) -> tuple[dict[str, float | int], str]:
        """An exploit step's explore: each parameter times one of its factors, clipped to the range; also a
        description of what changed ("learning_rate ×0.8, ent_coef ×1.25")."""
        out, said = {}, []
        for name, spec in self.parameters.items():
            factor = rng.choice(spec.perturb)
            out[name] = _cast(name, min(max(float(values[name]) * factor, spec.low), spec.high))
            said.append(f"{name} ×{factor:g}")
        return out, ", ".join(said)


def _uniform(spec: ParameterRange, rng: random.Random) -> float:
    if spec.scale == "log":
        return math.exp(rng.uniform(math.log(spec.low), math.log(spec.high)))
    return rng.uniform(spec.low, spec.high)


def _cast(name: str, value: float) -> float | int:
    return max(1, round(value)) if SEARCHABLE[name] is int else value


def load_search_space(path: str | Path) -> SearchSpace:
    """Read and check a search-space file; every problem is a ConfigError naming the file, key and value."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: search space not found (a file, like configs/search.yaml, is needed)")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=YamlLoader)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from None
    if not isinstance(data, dict) or not data.get("parameters"):
        raise ConfigError(f"{path}: the search space is empty; it needs a 'parameters' mapping with at least one "
                          f"of {sorted(SEARCHABLE)}")
    unknown = sorted(set(data["parameters"]) - set(SEARCHABLE)) if isinstance(data["parameters"], dict) else []
    if unknown:
        raise ConfigError(f"{path}: parameters.{unknown[0]}: not a PPO setting a branch can change; searchable: "
                          f"{sorted(SEARCHABLE)}")
    try:
        space = SearchSpace.model_validate(data)
        space.sequential.design()
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{path}: {key}: {first['msg']} (got {first.get('input')!r})") from None
    except MissionGymError as error:  # the sequential design's own range checks
        raise ConfigError(f"{path}: {error}") from None
    return space
