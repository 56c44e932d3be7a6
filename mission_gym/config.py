"""Typed, validated models of the files in a config directory; the only place that reads ``configs/``.

``load_config(dir)`` returns one :class:`MissionConfig`. Every problem is a :class:`ConfigError` whose message
names the file, the key path and the bad value, and says what would fix it.
"""

import hashlib
import json
import math
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from mission_gym.errors import ConfigError
from mission_gym.rules import ACTION_NAMES, BEHAVIOUR_MODES, REWARD_COMPONENTS
from mission_gym.yaml_io import YamlLoader, describe_validation_error

CONFIG_FILES = (
    "world.yaml",
    "scenario.yaml",
    "units_attackers.yaml",
    "units_defenders.yaml",
    "sensors.yaml",
    "engagement.yaml",
    "reward.yaml",
    "defender_randomization.yaml",
    "scenario_randomization.yaml",
    "eval_seeds.txt",
)

# Bounds on what the code can hold. Observations are float32 and every duration, speed and distance feeds
# them, tick counters and the route grids: no config number may exceed MAX_MAGNITUDE (1e6 s is 11 days of
# game time, 1e6 m/s is absurd), and an arena side may not exceed MAX_ARENA_M (the route grid has a cell every
# 2 m and each objective cell gets its own field, so a larger arena would need gigabytes).
MAX_MAGNITUDE = 1e6
MAX_ARENA_M = 2_000.0

Real = Annotated[float, Field(ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE)]
Positive = Annotated[float, Field(gt=0, le=MAX_MAGNITUDE)]
NonNegative = Annotated[float, Field(ge=0, le=MAX_MAGNITUDE)]
Probability = Annotated[float, Field(ge=0, le=1)]


class _Model(BaseModel):
    # allow_inf_nan=False: `.nan` or `.inf` in any field is refused at load (a NaN weight trains a NaN model).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# ----------------------------------------------------------------------------- world.yaml
class Arena(_Model):
    width: Annotated[float, Field(gt=0, le=MAX_ARENA_M)]
    height: Annotated[float, Field(gt=0, le=MAX_ARENA_M)]


class Physics(_Model):
    tick_hz: Annotated[int, Field(gt=0, le=1000)]
    action_repeat: Annotated[int, Field(gt=0, le=100)]
    max_episode_seconds: Positive


class Termination(_Model):
    stagnation_seconds: Positive
    stagnation_min_improvement_m: Positive
    stagnation_min_capture_seconds: Positive


class Obstacle(_Model):
    name: str
    kind: Literal["circle", "rect"]
    x: Real
    y: Real
    radius: Positive | None = None
    width: Positive | None = None
    height: Positive | None = None
    angle_deg: Real = 0.0
    blocks_sight: bool = True

    @model_validator(mode="after")
    def _shape_fields(self) -> "Obstacle":
        if self.kind == "circle" and self.radius is None:
            raise ValueError("a circle obstacle needs 'radius'")
        if self.kind == "rect" and (self.width is None or self.height is None):
            raise ValueError("a rect obstacle needs 'width' and 'height' (and optionally 'angle_deg')")
        return self


class World(_Model):
    arena: Arena
    physics: Physics
    termination: Termination
    obstacles: list[Obstacle] = Field(max_length=256)


# ----------------------------------------------------------------------------- scenario.yaml
class Pose(_Model):
    x: Real
    y: Real
    heading: Real = 0.0


class Objective(_Model):
    x: Real
    y: Real
    radius: Positive
    capture_seconds: Positive


class AttackerSlot(_Model):
    unit_type: str
    spawn: Pose


class DefenderSlot(_Model):
    unit_type: str
    spawn: Pose
    patrol_waypoints: list[tuple[Real, Real]] = Field(min_length=1, max_length=16)


class Scenario(_Model):
    objective: Objective
    attackers: list[AttackerSlot] = Field(min_length=1, max_length=64)
    defenders: list[DefenderSlot] = Field(default_factory=list, max_length=64)


# ----------------------------------------------------------------------------- units_*.yaml
class UnitType(_Model):
    category: Literal["ground", "air"]
    altitude_band: Annotated[int, Field(ge=0, le=3)]
    max_speed: Positive
    max_accel: Positive
    max_turn_rate_deg: Positive
    integrity: Positive
    radius: Positive
    tag_damage: Positive | None = None
    sensors: list[str] = Field(min_length=1)
    actions: list[str] = Field(min_length=1)

    # Field validators (not one model validator) so an error's key path ends at the bad field and shows its
    # value, e.g. `unit_types.UGV_A.actions = [...]`, rather than the whole unit's mapping.
    @field_validator("altitude_band")
    @classmethod
    def _band_matches_category(cls, band: int, info: ValidationInfo) -> int:
        category = info.data.get("category")
        if category is not None and (category == "air") != (band > 0):
            raise ValueError("an air unit needs altitude_band >= 1" if category == "air" else "a ground unit needs altitude_band 0")
        return band

    @field_validator("actions")
    @classmethod
    def _known_actions(cls, actions: list[str]) -> list[str]:
        unknown = [a for a in actions if a not in ACTION_NAMES]
        if unknown:
            raise ValueError(f"unknown action name(s) {unknown}; known actions: {list(ACTION_NAMES)}")
        if len(set(actions)) != len(actions):
            raise ValueError(f"actions list repeats a name: {actions}")
        return actions


class UnitCatalog(_Model):
    unit_types: dict[str, UnitType] = Field(min_length=1)


# ----------------------------------------------------------------------------- sensors.yaml
class Sensor(_Model):
    range: Positive
    fov_deg: Annotated[float, Field(gt=0, le=360)]
    requires_los: bool
    noise_std: NonNegative = 0.0


class Sensors(_Model):
    sensors: dict[str, Sensor] = Field(min_length=1, max_length=8)


# ----------------------------------------------------------------------------- engagement.yaml
class Tag(_Model):
    enabled: bool
    range: Positive
    cone_half_angle_deg: Annotated[float, Field(gt=0, le=180)]
    cooldown_seconds: NonNegative
    requires_los: bool
    damage_close: Positive
    damage_far: Positive
    close_range: NonNegative

    @field_validator("close_range")
    @classmethod
    def _within_range(cls, close_range: float, info: ValidationInfo) -> float:
        if "range" in info.data and close_range > info.data["range"]:
            raise ValueError(f"close_range must not exceed range ({info.data['range']:g})")
        return close_range


class Scan(_Model):
    enabled: bool
    range_multiplier: Annotated[float, Field(ge=1, le=MAX_MAGNITUDE)]
    cooldown_seconds: NonNegative


class Degradation(_Model):
    mobility_threshold: Probability
    sensing_threshold: Probability
    factor: Probability


class Engagement(_Model):
    tag: Tag
    scan: Scan
    degradation: Degradation


# ----------------------------------------------------------------------------- reward.yaml
class RewardTerm(_Model):
    weight: Real
    enabled: bool = True


class Reward(_Model):
    components: dict[str, RewardTerm]

    @field_validator("components")
    @classmethod
    def _all_components(cls, components: dict[str, RewardTerm]) -> dict[str, RewardTerm]:
        unknown = sorted(set(components) - set(REWARD_COMPONENTS))
        missing = [c for c in REWARD_COMPONENTS if c not in components]
        if unknown:
            raise ValueError(f"unknown reward component(s) {unknown}; known: {list(REWARD_COMPONENTS)}")
        if missing:
            raise ValueError(f"missing reward component(s) {missing}: give each a weight (enabled: false to turn off)")
        # REWARD_COMPONENTS order, whatever the file's order: callers label the breakdown's columns by
        # iterating this mapping, so a reordered reward.yaml must not relabel them.
        return {name: components[name] for name in REWARD_COMPONENTS}

    def weights(self) -> list[float]:
        """Effective weight per component in REWARD_COMPONENTS order (0 where disabled)."""
        return [self.components[c].weight if self.components[c].enabled else 0.0 for c in REWARD_COMPONENTS]


# ----------------------------------------------------------------------------- randomization
class DefenderRandomization(_Model):
    behaviour_modes: dict[Literal["patrol", "guard_objective", "intercept"], Probability]
    reaction_delay_seconds: tuple[NonNegative, NonNegative]
    random_action_prob: Probability
    heading_jitter_deg: NonNegative
    waypoint_jitter_m: NonNegative
    spawn_jitter_m: NonNegative
    chase_memory_seconds: NonNegative
    guard_radius_m: Positive

    @field_validator("behaviour_modes")
    @classmethod
    def _probabilities(cls, modes: dict[str, float]) -> dict[str, float]:
        total = sum(modes.values())
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"behaviour_modes probabilities sum to {total:g}, they must sum to 1")
        return modes

    @field_validator("reaction_delay_seconds")
    @classmethod
    def _ordered(cls, delay: tuple[float, float]) -> tuple[float, float]:
        if delay[0] > delay[1]:
            raise ValueError("reaction_delay_seconds is [min, max] with min <= max")
        return delay

    def mode_probabilities(self) -> list[float]:
        """Probability per mode in BEHAVIOUR_MODES order (absent modes have probability 0)."""
        return [self.behaviour_modes.get(m, 0.0) for m in BEHAVIOUR_MODES]


class ScenarioRandomization(_Model):
    attacker_spawn_jitter_m: NonNegative
    attacker_heading_jitter_deg: NonNegative
    objective_jitter_m: NonNegative


# ----------------------------------------------------------------------------- the whole directory
class MissionConfig(_Model):
    """Everything in one config directory, validated, with its content hash."""

    world: World
    scenario: Scenario
    attacker_types: dict[str, UnitType]
    defender_types: dict[str, UnitType]
    sensors: dict[str, Sensor]
    engagement: Engagement
    reward: Reward
    defender_randomization: DefenderRandomization
    scenario_randomization: ScenarioRandomization
    eval_seeds: tuple[int, ...]
    config_hash: str
    file_checksums: dict[str, str]

    @property
    def decision_seconds(self) -> float:
        """Game time one decision (action_repeat physics ticks) covers."""
        return self.world.physics.action_repeat / self.world.physics.tick_hz

    @property
    def max_decisions(self) -> int:
        """Decisions in an episode that reaches the time limit."""
        return math.ceil(self.world.physics.max_episode_seconds / self.decision_seconds)

    def attacker_unit(self, slot: int) -> UnitType:
        """Unit type of attacker `slot`."""
        return self.attacker_types[self.scenario.attackers[slot].unit_type]

    def defender_unit(self, slot: int) -> UnitType:
        """Unit type of defender `slot`."""
        return self.defender_types[self.scenario.defenders[slot].unit_type]


def load_config(config_dir: str | Path) -> MissionConfig:
    """Load and validate every file of `config_dir` into one :class:`MissionConfig`.

    Raises:
        ConfigError: a file is missing, is not valid YAML, or holds an unknown key or a bad value; the
            message names the file, the key path and the value.
    """
    directory = Path(config_dir)
    if not directory.is_dir():
        raise ConfigError(f"{directory}: config directory not found; pass an existing directory (e.g. configs/)")
    raw = {name: _read_bytes(directory / name) for name in CONFIG_FILES}
    data = {name: _parse_yaml(directory / name, raw[name]) for name in CONFIG_FILES if name.endswith(".yaml")}
    seeds = parse_seeds(directory / "eval_seeds.txt", raw["eval_seeds.txt"])
    parts = {
        "world": _validate(World, directory / "world.yaml", data["world.yaml"]),
        "scenario": _validate(Scenario, directory / "scenario.yaml", data["scenario.yaml"]),
        "attacker_types": _validate(UnitCatalog, directory / "units_attackers.yaml", data["units_attackers.yaml"]).unit_types,
        "defender_types": _validate(UnitCatalog, directory / "units_defenders.yaml", data["units_defenders.yaml"]).unit_types,
        "sensors": _validate(Sensors, directory / "sensors.yaml", data["sensors.yaml"]).sensors,
        "engagement": _validate(Engagement, directory / "engagement.yaml", data["engagement.yaml"]),
        "reward": _validate(Reward, directory / "reward.yaml", data["reward.yaml"]),
        "defender_randomization": _validate(
            DefenderRandomization, directory / "defender_randomization.yaml", data["defender_randomization.yaml"]
        ),
        "scenario_randomization": _validate(
            ScenarioRandomization, directory / "scenario_randomization.yaml", data["scenario_randomization.yaml"]
        ),
    }
    _cross_check(directory, parts)
    canonical = {name: _canonical(data[name]) if name in data else list(seeds) for name in CONFIG_FILES}
    return MissionConfig(
        **parts,
        eval_seeds=seeds,
        config_hash=_sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()),
        file_checksums={name: _sha256(raw[name]) for name in CONFIG_FILES},
    )


def parse_seeds(path: Path, raw: bytes) -> tuple[int, ...]:
    """Parse a seed file: one integer per line; blank lines and `#` comments are ignored."""
    seeds: list[int] = []
    for number, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            seed = int(text)
        except ValueError:
            raise ConfigError(f"{path}: line {number}: {text!r} is not an integer seed; write one integer per line") from None
        if not 0 <= seed < 2**63:
            raise ConfigError(f"{path}: line {number}: seed {seed} is out of range [0, 2**63)")
        seeds.append(seed)
    if not seeds:
        raise ConfigError(f"{path}: no seeds; write at least one integer seed, one per line")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{path}: seeds repeat; each seed must appear once")
    return tuple(seeds)


def read_seeds_file(path: str | Path) -> tuple[int, ...]:
    """Read and parse a seed file (see :func:`parse_seeds`)."""
    missing = "seed file not found; pass an existing file with one integer seed per line"
    return parse_seeds(Path(path), _read_bytes(Path(path), missing))


def _read_bytes(path: Path, missing: str | None = None) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        missing = missing or f"file not found; every config directory needs {', '.join(CONFIG_FILES)}"
        raise ConfigError(f"{path}: {missing}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a file") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read ({error.strerror})") from None


def _parse_yaml(path: Path, raw: bytes) -> Any:
    try:
        data = yaml.load(raw, Loader=YamlLoader)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level, got {type(data).__name__}")
    return data


def _validate(model: type[_Model], path: Path, data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"{path}: {describe_validation_error(error)}") from None


def _cross_check(directory: Path, parts: dict[str, Any]) -> None:
    """Checks that span files: unit types, sensors, positions inside the arena and outside obstacles."""
    world: World = parts["world"]
    scenario: Scenario = parts["scenario"]
    _check_units(directory / "units_attackers.yaml", parts["attacker_types"], parts["sensors"])
    _check_units(directory / "units_defenders.yaml", parts["defender_types"], parts["sensors"])
    scenario_file = directory / "scenario.yaml"
    for side, slots, catalog, catalog_file in (
        ("attackers", scenario.attackers, parts["attacker_types"], "units_attackers.yaml"),
        ("defenders", scenario.defenders, parts["defender_types"], "units_defenders.yaml"),
    ):
        for i, slot in enumerate(slots):
            key = f"{side}[{i}]"
            if slot.unit_type not in catalog:
                raise ConfigError(
                    f"{scenario_file}: {key}.unit_type = {slot.unit_type!r}: unknown unit type; "
                    f"known in {catalog_file}: {sorted(catalog)}"
                )
            unit = catalog[slot.unit_type]
            _check_inside(scenario_file, f"{key}.spawn", (slot.spawn.x, slot.spawn.y), world)
            if unit.category == "ground":
                _check_clear(scenario_file, f"{key}.spawn", (slot.spawn.x, slot.spawn.y), unit.radius, world)
            for j, point in enumerate(getattr(slot, "patrol_waypoints", [])):
                _check_inside(scenario_file, f"{key}.patrol_waypoints[{j}]", point, world)
    _check_inside(scenario_file, "objective", (scenario.objective.x, scenario.objective.y), world)


def _check_units(path: Path, catalog: dict[str, UnitType], sensors: dict[str, Sensor]) -> None:
    for name, unit in catalog.items():
        unknown = [s for s in unit.sensors if s not in sensors]
        if unknown:
            raise ConfigError(
                f"{path}: unit_types.{name}.sensors = {unit.sensors}: unknown sensor(s) {unknown}; "
                f"known in sensors.yaml: {sorted(sensors)}"
            )


def _check_inside(path: Path, key: str, point: tuple[float, float], world: World) -> None:
    x, y = point
    if not (0 <= x <= world.arena.width and 0 <= y <= world.arena.height):
        raise ConfigError(
            f"{path}: {key} = ({x:g}, {y:g}) is outside the arena "
            f"[0, {world.arena.width:g}] x [0, {world.arena.height:g}] (world.yaml)"
        )


def _check_clear(path: Path, key: str, point: tuple[float, float], radius: float, world: World) -> None:
    for obstacle in world.obstacles:
        if obstacle_clearance(obstacle, point) < radius:
            raise ConfigError(
                f"{path}: {key} = ({point[0]:g}, {point[1]:g}) puts a ground unit inside obstacle "
                f"{obstacle.name!r} (world.yaml); move the spawn clear of it"
            )


def obstacle_clearance(obstacle: Obstacle, point: tuple[float, float]) -> float:
    """Distance from `point` to the obstacle's boundary (negative inside)."""
    dx, dy = point[0] - obstacle.x, point[1] - obstacle.y
    if obstacle.kind == "circle":
        return math.hypot(dx, dy) - obstacle.radius
    angle = math.radians(obstacle.angle_deg)
    lx = dx * math.cos(angle) + dy * math.sin(angle)
    ly = -dx * math.sin(angle) + dy * math.cos(angle)
    qx, qy = abs(lx) - obstacle.width / 2, abs(ly) - obstacle.height / 2
    return math.hypot(max(qx, 0.0), max(qy, 0.0)) + min(max(qx, qy), 0.0)


def _canonical(value: Any) -> Any:
    """Parsed YAML with every number as a float, so `x: 50` and `x: 50.0` (same content) hash the same."""
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
