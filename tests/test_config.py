"""Config loading: every error names the file, the key path and the bad value; the hash ignores formatting."""

import os
import re
from pathlib import Path

import gymnasium
import pytest
import yaml

import mission_gym
from mission_gym.config import CONFIG_FILES, load_config, read_seeds_file
from mission_gym.errors import ConfigError
from mission_gym.rules import REWARD_COMPONENTS
from mission_gym.yaml_io import YamlLoader

from conftest import REPO_CONFIGS


def _append(key: str, item):
    return lambda data: data["unit_types"]["UGV_A"][key].append(item)


# (id, edit, file named in the message, key path, bad value as it appears in the message)
BAD_CONFIGS = [
    ("unknown key", {"world.yaml": {"arena.depth": 3}}, "world.yaml", "arena.depth", "3"),
    ("unknown nested key", {"units_attackers.yaml": {"unit_types.UGV_A.armour": 5}}, "units_attackers.yaml",
     "unit_types.UGV_A.armour", "5"),
    ("unknown attacker type", {"scenario.yaml": {"attackers[1].unit_type": "TANK"}}, "scenario.yaml",
     "attackers[1].unit_type", "'TANK'"),
    ("unknown defender type", {"scenario.yaml": {"defenders[0].unit_type": "DEF_TANK"}}, "scenario.yaml",
     "defenders[0].unit_type", "'DEF_TANK'"),
    ("attacker type used as defender", {"scenario.yaml": {"defenders[1].unit_type": "UGV_A"}}, "scenario.yaml",
     "defenders[1].unit_type", "'UGV_A'"),
    ("unknown action name", {"units_attackers.yaml": _append("actions", "JUMP")}, "units_attackers.yaml",
     "unit_types.UGV_A.actions", "JUMP"),
    ("unknown sensor", {"units_attackers.yaml": _append("sensors", "sonar")}, "units_attackers.yaml",
     "unit_types.UGV_A.sensors", "sonar"),
    ("wrong type: number", {"units_attackers.yaml": {"unit_types.UGV_A.max_speed": "fast"}}, "units_attackers.yaml",
     "unit_types.UGV_A.max_speed", "'fast'"),
    ("wrong type: bool", {"engagement.yaml": {"tag.enabled": "maybe"}}, "engagement.yaml", "tag.enabled", "'maybe'"),
    ("wrong type: list", {"world.yaml": {"obstacles": {"name": "x"}}}, "world.yaml", "obstacles", "'name'"),
    ("negative speed", {"units_defenders.yaml": {"unit_types.DEF_UGV.max_speed": -6.0}}, "units_defenders.yaml",
     "unit_types.DEF_UGV.max_speed", "-6.0"),
    ("probabilities do not sum to 1", {"defender_randomization.yaml": {"behaviour_modes.patrol": 0.4}},
     "defender_randomization.yaml", "behaviour_modes", "0.4"),
    ("unknown behaviour mode", {"defender_randomization.yaml": {"behaviour_modes.ambush": 0.0}},
     "defender_randomization.yaml", "behaviour_modes.ambush", "'ambush'"),
    ("probability above 1", {"defender_randomization.yaml": {"random_action_prob": 1.5}},
     "defender_randomization.yaml", "random_action_prob", "1.5"),
    ("attacker spawn outside the arena", {"scenario.yaml": {"attackers[2].spawn.x": 250.0}}, "scenario.yaml",
     "attackers[2].spawn", "250"),
    ("defender spawn outside the arena", {"scenario.yaml": {"defenders[0].spawn.y": -3.0}}, "scenario.yaml",
     "defenders[0].spawn", "-3"),
    ("waypoint outside the arena", {"scenario.yaml": {"defenders[1].patrol_waypoints[2]": [115.0, 205.0]}},
     "scenario.yaml", "defenders[1].patrol_waypoints[2]", "205"),
    ("objective outside the arena", {"scenario.yaml": {"objective.x": -1.0}}, "scenario.yaml", "objective", "-1"),
    ("ground spawn inside an obstacle", {"scenario.yaml": {"attackers[0].spawn": {"x": 50.0, "y": 40.0}}},
     "scenario.yaml", "attackers[0].spawn", "(50, 40)"),
    ("ground spawn overlapping an obstacle", {"scenario.yaml": {"attackers[1].spawn": {"x": 50.0, "y": 47.0}}},
     "scenario.yaml", "attackers[1].spawn", "(50, 47)"),
    ("defender spawn inside an obstacle", {"scenario.yaml": {"defenders[0].spawn": {"x": 100.0, "y": 78.0}}},
     "scenario.yaml", "defenders[0].spawn", "(100, 78)"),
    ("air unit with altitude band 0", {"units_attackers.yaml": {"unit_types.UAV_A.altitude_band": 0}},
     "units_attackers.yaml", "unit_types.UAV_A.altitude_band", "0"),
    ("circle without radius", {"world.yaml": {"obstacles[9].radius": None}}, "world.yaml", "obstacles[9]", "rock_1"),
    ("close range beyond tag range", {"engagement.yaml": {"tag.close_range": 30.0}}, "engagement.yaml",
     "tag.close_range", "30.0"),
    ("unknown reward component", {"reward.yaml": {"components.bravery": {"weight": 1.0}}}, "reward.yaml",
     "components", "bravery"),
    ("missing reward component", {"reward.yaml": lambda d: d["components"].pop("win_bonus")}, "reward.yaml",
     "components", "win_bonus"),
    ("reward weight not a number", {"reward.yaml": {"components.win_bonus.weight": "lots"}}, "reward.yaml",
     "components.win_bonus.weight", "'lots'"),
    ("non-numeric seed", {"eval_seeds.txt": "# held out\n101\n\n102\n1O3\n104\n"}, "eval_seeds.txt", "line 5",
     "'1O3'"),
    ("repeated seed", {"eval_seeds.txt": "5\n6\n5\n"}, "eval_seeds.txt", "seeds repeat", ""),
    ("no seeds", {"eval_seeds.txt": "# nothing\n"}, "eval_seeds.txt", "no seeds", ""),
    ("invalid YAML", {"reward.yaml": "components: {win_bonus: [1, 2\n"}, "reward.yaml", "not valid YAML", "line"),
    ("top level not a mapping", {"sensors.yaml": "- lidar\n- radar\n"}, "sensors.yaml", "mapping", "list"),
    ("NaN reward weight", {"reward.yaml": {"components.win_bonus.weight": float("nan")}}, "reward.yaml",
     "components.win_bonus.weight", "nan"),
    ("infinite episode", {"world.yaml": {"physics.max_episode_seconds": float("inf")}}, "world.yaml",
     "physics.max_episode_seconds", "inf"),
    ("-inf waypoint", {"scenario.yaml": {"defenders[0].patrol_waypoints[1]": [90.0, float("-inf")]}},
     "scenario.yaml", "defenders[0].patrol_waypoints[1][1]", "-inf"),
    ("absurd speed", {"units_attackers.yaml": {"unit_types.UGV_A.max_speed": 1e300}}, "units_attackers.yaml",
     "unit_types.UGV_A.max_speed", "1e+300"),
    ("absurd episode", {"world.yaml": {"physics.max_episode_seconds": 1e7}}, "world.yaml",
     "physics.max_episode_seconds", "10000000.0"),
    ("arena too large for the route grid", {"world.yaml": {"arena.width": 5000.0}}, "world.yaml", "arena.width",
     "5000.0"),
]


@pytest.mark.parametrize(("edit", "file", "key", "value"), [case[1:] for case in BAD_CONFIGS],
                         ids=[case[0] for case in BAD_CONFIGS])
def test_bad_config_is_refused_naming_file_key_and_value(config_dir, edit, file, key, value):
    directory = config_dir(edit)
    with pytest.raises(ConfigError) as caught:
        load_config(directory)
    message = str(caught.value)
    assert str(directory / file) in message
    assert key in message
    assert value in message
    # The bad value follows its key path, not some unrelated part of the message.
    if value and "line" not in key and file.endswith(".yaml") and "YAML" not in key and "mapping" not in key:
        assert message.index(key) < message.rindex(value)


def test_messages_quote_the_value_at_the_failing_key_not_the_whole_parent(config_dir):
    # Older validators reported `unit_types.UGV_A = {...the whole unit...}` for an unknown action.
    directory = config_dir({"units_attackers.yaml": _append("actions", "JUMP")})
    with pytest.raises(ConfigError, match=r"unit_types\.UGV_A\.actions = \[.*'JUMP'\]: unknown action"):
        load_config(directory)
    directory = config_dir({"defender_randomization.yaml": {"behaviour_modes.patrol": 0.4}})
    with pytest.raises(ConfigError, match=r"behaviour_modes = \{.*\}: behaviour_modes probabilities sum to 0\.9"):
        load_config(directory)


def test_missing_file_is_named(config_dir):
    directory = config_dir()
    (directory / "sensors.yaml").unlink()
    with pytest.raises(ConfigError, match=re.escape(str(directory / "sensors.yaml")) + ": file not found"):
        load_config(directory)


def test_missing_directory_is_named(tmp_path):
    with pytest.raises(ConfigError, match="config directory not found"):
        load_config(tmp_path / "nowhere")


def test_invalid_yaml_names_file_and_position(config_dir):
    directory = config_dir({"world.yaml": "arena:\n  width: 200\n   height: 200\n"})
    with pytest.raises(ConfigError) as caught:
        load_config(directory)
    assert str(directory / "world.yaml") in str(caught.value) and "line 3" in str(caught.value)


def test_env_creation_with_bad_config_raises_config_error(config_dir):
    directory = config_dir({"scenario.yaml": {"attackers[0].unit_type": "TANK"}})
    with pytest.raises(ConfigError, match=r"scenario\.yaml: attackers\[0\]\.unit_type = 'TANK'"):
        gymnasium.make("MissionGym-v0", config_dir=directory)
    with pytest.raises(ConfigError, match="TANK"):
        mission_gym.MissionGymEnv(config_dir=directory)
    with pytest.raises(ConfigError, match="TANK"):
        mission_gym.make_vec_env(2, config_dir=directory, seed=0)


def test_unknown_unit_type_is_not_skipped(config_dir):
    # The older system silently skipped an unknown unit type, changing the spaces.
    directory = config_dir({"scenario.yaml": lambda d: d["attackers"].append(
        {"unit_type": "UGV_C", "spawn": {"x": 30.0, "y": 30.0, "heading": 0.0}})})
    with pytest.raises(ConfigError, match=r"attackers\[4\]\.unit_type = 'UGV_C'"):
        load_config(directory)


def test_defaults_match_the_reference():
    config = load_config(REPO_CONFIGS)
    assert (config.world.arena.width, config.world.arena.height) == (200.0, 200.0)
    assert len(config.world.obstacles) == 22
    assert config.world.physics.tick_hz == 20 and config.world.physics.action_repeat == 5
    assert config.decision_seconds == 0.25 and config.max_decisions == 1200
    assert [s.unit_type for s in config.scenario.attackers] == ["UGV_A", "UGV_B", "UAV_A", "UAV_B"]
    assert [s.unit_type for s in config.scenario.defenders] == ["DEF_UGV", "DEF_UGV"]
    assert config.defender_randomization.mode_probabilities() == [0.5, 0.3, 0.2]
    assert config.engagement.tag.range == 20.0 and config.engagement.tag.cooldown_seconds == 3.0
    assert list(config.reward.components) == list(REWARD_COMPONENTS)
    assert len(config.eval_seeds) >= 40


def test_loading_works_from_any_working_directory(tmp_path, monkeypatch):
    expected = load_config(REPO_CONFIGS).config_hash
    monkeypatch.chdir(tmp_path)
    assert load_config(REPO_CONFIGS).config_hash == expected
    assert load_config(os.path.relpath(REPO_CONFIGS, tmp_path)).config_hash == expected
    env = mission_gym.MissionGymEnv(config_dir=REPO_CONFIGS)
    assert env.config.config_hash == expected


def _restyle(directory: Path) -> None:
    """Rewrite every file with the same content: other key order, flow style, comments, blank lines."""
    def reverse(value):
        if isinstance(value, dict):
            return {k: reverse(v) for k, v in reversed(list(value.items()))}
        if isinstance(value, list):
            return [reverse(v) for v in value]
        return value

    for index, name in enumerate(CONFIG_FILES):
        path = directory / name
        if name.endswith(".txt"):
            seeds = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
            path.write_text("\n\n# reformatted\n" + "\n".join(f"  {s}   # seed" for s in seeds) + "\n")
            continue
        data = reverse(yaml.safe_load(path.read_text()))
        text = yaml.safe_dump(data, default_flow_style=bool(index % 2), sort_keys=False, indent=4, width=60)
        path.write_text(f"# {name}, reformatted\n\n{text}\n# end\n")


def test_config_hash_ignores_formatting_and_changes_with_content(config_dir):
    reference = load_config(config_dir())
    restyled_dir = config_dir()
    _restyle(restyled_dir)
    restyled = load_config(restyled_dir)
    assert restyled.config_hash == reference.config_hash
    # Same content, different bytes: the per-file checksums see it, the hash does not.
    assert all(restyled.file_checksums[n] != reference.file_checksums[n] for n in CONFIG_FILES)
    # An integer written as a float is the same value.
    floats = load_config(config_dir({"world.yaml": {"obstacles[0].x": 50.0, "obstacles[0].y": 40.0}}))
    assert floats.config_hash == reference.config_hash
    # Exponent notation is a number too (PyYAML alone reads `5e1` as a string).
    exponent_dir = config_dir()
    world = exponent_dir / "world.yaml"
    world.write_text(re.sub(r"\bx: 50\b", "x: 5e1", world.read_text(), count=1))
    assert world.read_text() != (config_dir() / "world.yaml").read_text()
    exponent = load_config(exponent_dir)
    assert exponent.config_hash == reference.config_hash and exponent.world.obstacles[0].x == 50.0
    # Any value changing changes the hash.
    for edit in ({"world.yaml": {"obstacles[0].x": 50.5}},
                 {"reward.yaml": {"components.win_bonus.enabled": False}},
                 {"scenario.yaml": {"attackers[0].spawn.heading": 40.0}},
                 {"eval_seeds.txt": "1\n2\n3\n"}):
        assert load_config(config_dir(edit)).config_hash != reference.config_hash, edit


def test_per_file_checksums_are_sha256_of_the_bytes(config_dir):
    import hashlib

    directory = config_dir()
    config = load_config(directory)
    assert set(config.file_checksums) == set(CONFIG_FILES)
    for name, digest in config.file_checksums.items():
        assert digest == hashlib.sha256((directory / name).read_bytes()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", config.config_hash)


def test_reordered_reward_file_keeps_component_labels(config_dir):
    # Components are labelled by name, never by the file's order (PyYAML's default dump sorts the keys).
    def sort_components(data):
        data["components"] = dict(sorted(data["components"].items()))

    config = load_config(config_dir({"reward.yaml": sort_components}))
    assert list(config.reward.components) == list(REWARD_COMPONENTS)
    assert dict(zip(REWARD_COMPONENTS, config.reward.weights()))["time_penalty"] == -0.001
    env = mission_gym.MissionGymEnv(config=config)
    env.reset(seed=0)
    _, reward, *_, info = env.step(env.action_space.sample() * 0)
    assert info["reward_components"]["time_penalty"] == pytest.approx(-0.001)
    assert info["reward_components"]["win_bonus"] == 0.0


def test_limits_name_the_valid_range(config_dir):
    directory = config_dir({"world.yaml": {"physics.max_episode_seconds": 1e7}})
    with pytest.raises(ConfigError, match=r"less than or equal to 1000000"):
        load_config(directory)
    directory = config_dir({"world.yaml": {"arena.height": 2001.0}})
    with pytest.raises(ConfigError, match=r"arena\.height = 2001\.0: Input should be less than or equal to 2000"):
        load_config(directory)


def test_the_limits_admit_the_edges(config_dir):
    edges = {"world.yaml": {"arena.width": 2000.0, "arena.height": 2000.0, "physics.max_episode_seconds": 1e6},
             "units_attackers.yaml": {"unit_types.UGV_A.max_speed": 1e6}}
    assert load_config(config_dir(edges)).world.arena.width == 2000.0


@pytest.mark.parametrize("text, expected", [
    ("arena: {width: 1}\narena: {width: 2}\n", "duplicate key 'arena' on line 2 (first on line 1)"),
    ("a:\n  b: 1\n  c: 2\n  b: 3\n", "duplicate key 'b' on line 4 (first on line 2)"),
    ("a: {b: 1, b: 2}\n", "duplicate key 'b' twice on line 1"),
    ("- {x: 1, y: 2, x: 3}\n", "duplicate key 'x' twice on line 1"),
])
def test_yaml_loader_refuses_a_repeated_key_naming_both_lines(text, expected):
    with pytest.raises(yaml.YAMLError, match=re.escape(expected)):
        yaml.load(text, Loader=YamlLoader)


def test_yaml_loader_keeps_merge_keys_and_exponent_floats():
    data = yaml.load("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  x: 5\nlr: 1e-3\n", Loader=YamlLoader)
    assert data["other"] == {"x": 5, "y": 2} and data["lr"] == 0.001


def test_repeated_key_in_a_config_file_is_refused(config_dir):
    directory = config_dir()
    reward = directory / "reward.yaml"
    reward.write_text(reward.read_text() + "  win_bonus: {weight: 1.0, enabled: true}\n")
    with pytest.raises(ConfigError, match=re.escape(f"{reward}: not valid YAML: duplicate key 'win_bonus'")):
        load_config(directory)


def test_missing_seed_file_is_named_as_a_seed_file(tmp_path):
    path = tmp_path / "missing.txt"
    with pytest.raises(ConfigError) as caught:
        read_seeds_file(path)
    assert str(caught.value) == f"{path}: seed file not found; pass an existing file with one integer seed per line"


def test_seed_file_reader_reports_the_line(tmp_path):
    path = tmp_path / "seeds.txt"
    path.write_text("1\n2 # two\n\nthree\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}: line 4: 'three'")):
        read_seeds_file(path)
    path.write_text("1\n2 # two\n\n3\n")
    assert read_seeds_file(path) == (1, 2, 3)
