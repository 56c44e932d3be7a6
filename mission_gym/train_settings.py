"""The settings of a training run: PPO hyperparameters, everything else a run needs, and the bounds and
defaults they are checked against. Pure data: building them trains nothing and imports no torch."""

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mission_gym.entity_policy import DEFAULT_NET_ARCH as ENTITY_NET_ARCH
from mission_gym.runs.record import PolicyKind

__all__ = ["DEFAULT_NET_ARCH", "LEGACY_DEFAULTS", "MAX_SAMPLES", "MAX_SEED", "MAX_TIMESTEPS", "NETWORK",
           "PPO_HYPERPARAMETERS", "REWARD_SCALE", "PPOHyperparameters", "PolicyKind", "TrainSettings"]

# Bounds on what the code can hold: SB3 seeds numpy's legacy generator (seeds < 2**32), step counters are
# int64 (TensorBoard, checkpoint names), and a rollout or imitation set is held in memory at once (2**24 timesteps
# of float32 observations is a few GB).
MAX_SEED = 2**32 - 1
MAX_TIMESTEPS = 10**15
MAX_SAMPLES = 2**24

# Hyperparameters a branch inherits from its parent unless given again; the network (`policy`, `net_arch`)
# cannot change on a branch.
PPO_HYPERPARAMETERS = ("learning_rate", "n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda", "clip_range",
                       "ent_coef", "vf_coef", "max_grad_norm", "net_arch", "policy", "reward_scale")
NETWORK = ("policy", "net_arch")
DEFAULT_NET_ARCH: dict[str, list[int]] = {"mlp": [128, 128], "entity": ENTITY_NET_ARCH}
# Returns here are in the hundreds; scaled by 0.01 they are near 1 (see docs/design.md, "Learning speed").
REWARD_SCALE = 0.01
# Runs recorded before reward_scale existed learned from unscaled rewards; their branches keep doing so.
LEGACY_DEFAULTS = {"reward_scale": 1.0}


class PPOHyperparameters(BaseModel):
    """PPO settings. Defaults are tuned for throughput on 2 CPU cores: many arenas, large minibatches, few
    epochs (SB3's default minibatch of 64 spends most of its time in per-batch overhead)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    learning_rate: float = Field(3e-4, gt=0, description="Adam learning rate")
    n_steps: int = Field(64, gt=0, le=MAX_SAMPLES, description="decisions per arena per rollout")
    batch_size: int = Field(4096, gt=1, description="minibatch size")
    n_epochs: int = Field(4, gt=0, le=10_000, description="passes over each rollout")
    gamma: float = Field(0.99, gt=0, le=1, description="discount factor")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE lambda")
    clip_range: float = Field(0.2, gt=0, description="PPO clip range")
    ent_coef: float = Field(0.0, ge=0, description="entropy bonus coefficient (0: the imitation warm start already explores; a bonus diffuses it)")
    vf_coef: float = Field(0.5, ge=0, description="value loss coefficient")
    max_grad_norm: float = Field(0.5, gt=0, description="gradient clipping norm")
    net_arch: list[Annotated[int, Field(gt=0, le=65_536)]] | None = Field(None, min_length=1, description="hidden layer sizes (mlp: actor and critic "
                                       "each, 128,128 by default; entity: the per-attacker and value heads, 64)")
    policy: PolicyKind = Field("mlp", description="mlp: one network over the whole observation; entity: weights "
                               "shared per unit kind, so a branch may change the unit counts")
    reward_scale: float = Field(REWARD_SCALE, gt=0, le=1e6, allow_inf_nan=False,
                                description="factor on the rewards PPO learns from (episode returns are logged "
                                "unscaled); keeps value targets near 1 so the value loss does not own the clipped "
                                "gradient")

    @model_validator(mode="after")
    def _default_network(self) -> "PPOHyperparameters":
        if self.net_arch is None:
            self.net_arch = list(DEFAULT_NET_ARCH[self.policy])
        return self


class TrainSettings(BaseModel):
    """Everything one training run needs. Hyperparameters left as None take the default for a fresh run and
    the parent's value for a branch."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    timesteps: int = Field(2_000_000, gt=0, le=MAX_TIMESTEPS, description="timesteps this run trains (a branch adds them to the parent's)")
    n_envs: int = Field(256, gt=0, le=4096, description="arenas stepped together")
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="seed of the arenas and of PPO (random when not given)")
    run_name: str | None = Field(None, description="name of a fresh run (a timestamp is appended)")
    notes: str = Field("", description="free text stored with the run")
    parent_checkpoint: str | None = Field(None, description="checkpoint path (.zip optional) or run name to branch from")
    branch_name: str | None = Field(None, description="name of the branch (a timestamp is appended)")
    config_dir: Path = Field(Path("configs"), description="config directory to train on")
    runs_root: Path = Field(Path("runs"), description="folder holding every run")
    checkpoint_freq: int = Field(100_000, gt=0, le=MAX_TIMESTEPS, description="timesteps between checkpoints")
    keep_checkpoints: int | None = Field(5, ge=1, le=MAX_TIMESTEPS, description="newest checkpoints kept (plus any a child branched from); None keeps all")
    eval_freq: int | None = Field(None, gt=0, le=MAX_TIMESTEPS, description="timesteps between evaluations on the eval seeds (None: off)")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="torch device; auto picks CUDA when present")
    torch_threads: int | None = Field(None, gt=0, le=1024, description="torch CPU threads for updates (default: every core "
                                      "for minibatches of 1024+, else 1, which is faster for small batches)")
    imitation_samples: int = Field(131_072, ge=0, le=MAX_SAMPLES, description="scripted-baseline decisions a fresh policy imitates "
                                   "before PPO (at most --timesteps; 0: off; branches start from their parent)")
    tensorboard: bool = Field(True, description="write TensorBoard logs into the run folder")
    progress_bar: bool = Field(True, description="show a progress bar")
    hyperparameters: dict[str, Any] = Field(default_factory=dict, description="PPO settings given explicitly (see PPOHyperparameters)")
