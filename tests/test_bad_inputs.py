"""The bad-input corpus: every config file, every flag of every command and every kind of path, given a bad
value. Each case asserts what a user must get: exit status 2, one `error: ...` message and no traceback, the
message names the file, key or flag and the value, and the project folder (configs and runs) is byte-identical
afterwards: nothing created, changed or deleted.

The commands run in this process through their `main(argv)` (fast); a few run as real processes, where a
traceback would really reach the user. docs/reliability.md ("Bad input") counts the cases.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from runs_factory import make_run, make_spaces
from test_training_support import REPO, TINY, call_main, make_workdir, record, run_cli

from mission_gym import cli
from mission_gym.config import CONFIG_FILES, load_config
from mission_gym.errors import ConfigError
from mission_gym.runs.retention import RetentionPolicy
from mission_gym.scripts import cleanup, evaluate, run_utils, train_ppo
from mission_gym.spaces import space_signature
from mission_gym.yaml_io import YamlLoader

PARENT = "parent-20260101-000000"
OTHER = "other-scenario-20260101-000000"  # a run trained on 3 defenders: incompatible with configs/
CHECKPOINT = f"runs/{PARENT}/checkpoints/ppo_mission_2000_steps"
HUGE = 1e12  # beyond every bound: counters, float32 observations, grids
NON_FINITE = (float("nan"), float("inf"), float("-inf"))
YAML_FILES = [name for name in CONFIG_FILES if name.endswith(".yaml")]
# A tiny training: if a case were wrongly accepted, it would end quickly (and fail on the new run folder).
TRAIN = (*TINY, "--timesteps", "256", "--imitation-samples", "0", "--no-tensorboard")


# --------------------------------------------------------------------------------------------- helpers
def tree_digest(root: Path) -> dict[str, str]:
    """Every entry under `root`: file contents by SHA-256, symlinks by target, folders by name."""
    digest: dict[str, str] = {}
    for item in sorted(root.rglob("*")):
        rel = item.relative_to(root).as_posix()
        if item.is_symlink():
            digest[rel] = "link:" + os.readlink(item)
        elif item.is_dir():
            digest[rel] = "dir"
        else:
            digest[rel] = hashlib.sha256(item.read_bytes()).hexdigest()
    return digest


def assert_refused(work: Path, command: Callable[[], tuple[int, str, str]], *needles: str) -> str:
    """Run `command`; assert exit 2, one error message naming every needle, no traceback, nothing changed."""
    before = tree_digest(work)
    code, _, err = command()
    assert code == 2, f"exit {code}, stderr:\n{err}"
    assert err.startswith("error: "), err
    assert "Traceback" not in err, err
    assert "errors.pydantic.dev" not in err and "type=" not in err, err  # no raw pydantic dump
    assert "[Errno" not in err, err
    for needle in needles:
        assert needle in err, f"{needle!r} not in:\n{err}"
    assert tree_digest(work) == before, "the project folder changed"
    return err


def main_of(module: Any) -> Callable[..., Callable[[], tuple[int, str, str]]]:
    return lambda *argv: lambda: call_main(module.main, argv)


train, evaluate_, cleanup_, dashboard, mission_gym = (
    main_of(train_ppo), main_of(evaluate), main_of(cleanup), main_of(run_utils), main_of(cli))


@pytest.fixture()
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder: configs/, a README, and runs/ with a parent run matching configs/ and a run of
    another scenario (fake checkpoints whose hashes the records hold)."""
    folder = make_workdir(tmp_path / "project")
    (folder / "README.md").write_text("# not a folder\n")
    monkeypatch.chdir(folder)
    make_run(folder / "runs", PARENT, steps=[1000, 2000], spaces=space_signature(load_config(folder / "configs")))
    make_run(folder / "runs", OTHER, steps=[500], spaces=make_spaces(defenders=3))
    return folder


# --------------------------------------------------------------------------------------------- config files
def _numeric_leaves(data: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _numeric_leaves(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _numeric_leaves(value, (*path, index))
    elif isinstance(data, int | float) and not isinstance(data, bool):
        yield path, data


def _key_text(path: tuple) -> str:
    """A key path as messages write it: `obstacles[9].radius`, `patrol_waypoints[0][1]`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _config_fields() -> list[tuple[str, tuple]]:
    """Every numeric field of every config file, once per field (the first list item that has it)."""
    fields, seen = [], set()
    for name in YAML_FILES:
        data = yaml.load((REPO / "configs" / name).read_text(), Loader=YamlLoader)
        for path, _ in _numeric_leaves(data):
            generic = (name, tuple("[]" if isinstance(p, int) else p for p in path))
            if generic not in seen:
                seen.add(generic)
                fields.append((name, path))
    return fields


CONFIG_FIELDS = _config_fields()
# Non-finite: .nan, .inf and -.inf in turn over every numeric field; out of range: HUGE in every one.
VALUE_CASES = [(name, path, NON_FINITE[i % 3]) for i, (name, path) in enumerate(CONFIG_FIELDS)]
VALUE_CASES += [(name, path, HUGE) for name, path in CONFIG_FIELDS]


def _set(data: Any, path: tuple, value: Any) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


@pytest.mark.parametrize("name, path, value", VALUE_CASES,
                         ids=[f"{n}:{_key_text(p)}={v!r}" for n, p, v in VALUE_CASES])
def test_config_number_that_is_not_finite_or_out_of_range(work, name, path, value):
    file = work / "configs" / name
    data = yaml.load(file.read_text(), Loader=YamlLoader)
    _set(data, path, value)
    file.write_text(yaml.safe_dump(data, sort_keys=False))  # writes .nan / .inf / -.inf as YAML spells them
    shown = "1000000000000" if value == HUGE else repr(value)
    reason = "less than or equal to" if value == HUGE else "Input should be a finite number"
    assert_refused(work, train(*TRAIN), f"configs/{name}: {_key_text(path)} = {shown}", reason)


def _first_top_level_key(text: str) -> tuple[str, int]:
    for number, line in enumerate(text.splitlines(), start=1):
        if line and not line.startswith(("#", " ", "-")):
            return line.split(":", 1)[0], number
    raise AssertionError("no top-level key")


def _malformed(text: str) -> tuple[str, list[str]]:
    return text + "\nbroken: [1, 2\n", ["not valid YAML", "line"]


def _wrong_type(text: str) -> tuple[str, list[str]]:
    data = yaml.load(text, Loader=YamlLoader)
    key = next(iter(data))
    data[key] = "oops" if not isinstance(data[key], str) else 12
    return yaml.safe_dump(data, sort_keys=False), [f"{key} = ", "'oops'" if data[key] == "oops" else "12"]


def _duplicate_key(text: str) -> tuple[str, list[str]]:
    key, line = _first_top_level_key(text)
    value = yaml.load(text, Loader=YamlLoader)[key]
    repeated = text.rstrip("\n") + f"\n{key}: {json.dumps(value)}\n"
    return repeated, [f"duplicate key {key!r} on line {len(repeated.splitlines())}", f"first on line {line}"]


def _unknown_key(text: str) -> tuple[str, list[str]]:
    return text + "\nsurprise_key: 1\n", ["surprise_key = 1", "unknown key"]


STRUCTURE = {"malformed": _malformed, "wrong_type": _wrong_type, "duplicate_key": _duplicate_key,
             "unknown_key": _unknown_key}
STRUCTURE_CASES = [(name, kind) for name in YAML_FILES for kind in STRUCTURE]


@pytest.mark.parametrize("name, kind", STRUCTURE_CASES, ids=[f"{n}:{k}" for n, k in STRUCTURE_CASES])
def test_config_file_malformed_mistyped_or_repeating_a_key(work, name, kind):
    file = work / "configs" / name
    text, needles = STRUCTURE[kind](file.read_text())
    file.write_text(text)
    assert_refused(work, train(*TRAIN), f"configs/{name}", *needles)


def _line_of(text: str, fragment: str) -> int:
    return text[: text.index(fragment)].count("\n") + 1


# (file, text replaced, replacement, expected) where expected reads the edited file's line numbers
NESTED_DUPLICATES = [
    ("reward.yaml", "win_bonus: {weight: 200.0, enabled: true}", "win_bonus: {weight: 200.0, weight: .nan}",
     lambda t: f"duplicate key 'weight' twice on line {_line_of(t, 'win_bonus:')}"),
    ("units_attackers.yaml", "    max_speed: 8.0\n", "    max_speed: 8.0\n    max_speed: 80.0\n",
     lambda t: f"duplicate key 'max_speed' on line {_line_of(t, 'max_speed: 80.0')} "
               f"(first on line {_line_of(t, 'max_speed: 8.0')})"),
    ("sensors.yaml", "  radar:", "  lidar: {range: 1.0, fov_deg: 360.0, requires_los: true}\n  radar:",
     lambda t: f"duplicate key 'lidar' on line {_line_of(t, 'lidar: {range: 1.0')} "
               f"(first on line {_line_of(t, 'lidar:')})"),
]


@pytest.mark.parametrize("name, old, new, expected", NESTED_DUPLICATES, ids=[c[0] for c in NESTED_DUPLICATES])
def test_config_nested_duplicate_key_names_both_lines(work, name, old, new, expected):
    file = work / "configs" / name
    text = file.read_text()
    assert old in text
    edited = text.replace(old, new, 1)
    file.write_text(edited)
    assert_refused(work, train(*TRAIN), f"configs/{name}", expected(edited))


SEED_CASES = [
    ("malformed", "101\n1O3\n", ["line 2", "'1O3'"]),
    ("not finite", "101\ninf\n", ["line 2", "'inf'"]),
    ("nan", "nan\n", ["line 1", "'nan'"]),
    ("out of range", f"101\n{2**64}\n", ["line 2", str(2**64), "out of range"]),
    ("negative", "-1\n", ["line 1", "-1", "out of range"]),
    ("duplicate", "5\n6\n5\n", ["seeds repeat"]),
    ("empty", "# nothing\n", ["no seeds"]),
]


@pytest.mark.parametrize("text, needles", [c[1:] for c in SEED_CASES], ids=[c[0] for c in SEED_CASES])
def test_eval_seeds_file(work, text, needles):
    (work / "configs" / "eval_seeds.txt").write_text(text)
    assert_refused(work, train(*TRAIN), "configs/eval_seeds.txt", *needles)


RETENTION_CASES = [
    ("malformed", "max_runs: [1\n", ["cannot read retention policy", "line"]),
    ("wrong type", "max_runs: lots\n", ["max_runs = 'lots'"]),
    ("nan", "max_disk_gb: .nan\n", ["max_disk_gb = nan", "finite"]),
    ("inf", "max_disk_gb: .inf\n", ["max_disk_gb = inf", "finite"]),
    ("-inf", "failed_run_max_age_hours: -.inf\n", ["failed_run_max_age_hours = -inf"]),
    ("out of range", "failed_run_max_age_hours: 1e12\n", ["failed_run_max_age_hours = 1000000000000.0"]),
    ("zero runs", "max_runs: 0\n", ["max_runs = 0", "greater than 0"]),
    ("duplicate key", "max_runs: 5\nmax_disk_gb: 1\nmax_runs: 50\n", ["duplicate key 'max_runs' on line 3",
                                                                      "first on line 1"]),
    ("unknown key", "max_run: 5\n", ["max_run = 5", "unknown key"]),
]


@pytest.mark.parametrize("text, needles", [c[1:] for c in RETENTION_CASES], ids=[c[0] for c in RETENTION_CASES])
def test_retention_policy_file(tmp_path, text, needles):
    """The retention policy has no command of its own (the Dagster sensor reads it): the loader's error."""
    policy = tmp_path / "retention.yaml"
    policy.write_text(text)
    with pytest.raises(ConfigError) as info:
        RetentionPolicy.from_yaml(policy)
    message = str(info.value)
    assert message.startswith(f"{policy}: ") and "errors.pydantic.dev" not in message
    for needle in needles:
        assert needle in message, message


def test_the_repository_retention_policy_still_loads():
    assert RetentionPolicy.from_yaml(REPO / "configs" / "retention.yaml").max_runs == 50


# --------------------------------------------------------------------------------------------- train_ppo flags
FLOAT_FLAGS = ["--learning-rate", "--gamma", "--gae-lambda", "--clip-range", "--ent-coef", "--vf-coef",
               "--max-grad-norm"]
TRAIN_FLAG_CASES = [
    *[([f"{flag}={text}"], [flag, f"'{text}' is not a finite number"]) for flag in FLOAT_FLAGS
      for text in ("inf", "nan", "-inf")],  # `=`: argparse reads a bare `-inf` as a flag
    *[([flag, "1e999"], [flag, "'1e999' is not a finite number"]) for flag in FLOAT_FLAGS[:2]],
    (["--learning-rate", "fast"], ["--learning-rate", "'fast' is not a number"]),
    (["--learning-rate", "0"], ["--learning-rate 0", "greater than 0"]),
    (["--gamma", "1.5"], ["--gamma 1.5", "less than or equal to 1"]),
    (["--gae-lambda", "-0.1"], ["--gae-lambda -0.1"]),
    (["--clip-range", "0"], ["--clip-range 0"]),
    (["--ent-coef", "-1"], ["--ent-coef -1"]),
    (["--vf-coef", "-1"], ["--vf-coef -1"]),
    (["--max-grad-norm", "0"], ["--max-grad-norm 0"]),
    (["--n-steps", "0"], ["--n-steps 0"]),
    (["--n-steps", str(2**40)], [f"--n-steps {2**40}", "less than or equal to 16777216"]),
    (["--n-steps", "1.5"], ["--n-steps", "invalid int value: '1.5'"]),
    (["--batch-size", "1"], ["--batch-size 1", "greater than 1"]),
    (["--batch-size", "512"], ["--batch-size 512", "larger than the rollout", "= 256 timesteps"]),
    (["--n-epochs", "0"], ["--n-epochs 0"]),
    (["--n-epochs", "100000"], ["--n-epochs 100000", "10000"]),
    (["--net-arch", "abc"], ["--net-arch 'abc'"]),
    (["--net-arch", "0,32"], ["--net-arch '0,32'"]),
    (["--net-arch", "100000"], ["--net-arch 100000", "65536"]),
    (["--timesteps", "0"], ["--timesteps 0", "greater than 0"]),
    (["--timesteps", str(10**20)], [f"--timesteps {10**20}", "less than or equal to"]),
    (["--timesteps", "1e6"], ["--timesteps", "invalid int value: '1e6'"]),
    (["--n-envs", "0"], ["--n-envs 0"]),
    (["--n-envs", "5000"], ["--n-envs 5000", "4096"]),
    (["--n-envs", "1", "--n-steps", "1"], ["--n-envs 1", "--n-steps 1"]),
    (["--n-envs", "4096", "--n-steps", "8192"], ["--n-envs 4096 x --n-steps 8192", "16,777,216"]),
    (["--seed", "-1"], ["--seed -1"]),
    (["--seed", "99999999999999999999999"], ["--seed 99999999999999999999999", "4294967295"]),
    (["--seed", str(2**32)], [f"--seed {2**32}", "4294967295"]),
    (["--seed", "nan"], ["--seed", "invalid int value: 'nan'"]),
    (["--checkpoint-freq", "0"], ["--checkpoint-freq 0"]),
    (["--checkpoint-freq", str(10**20)], [f"--checkpoint-freq {10**20}"]),
    (["--keep-checkpoints", "-1"], ["--keep-checkpoints -1"]),
    (["--keep-checkpoints", str(10**20)], [f"--keep-checkpoints {10**20}"]),
    (["--eval-freq", "-5"], ["--eval-freq -5"]),
    (["--eval-freq", str(10**20)], [f"--eval-freq {10**20}"]),
    (["--torch-threads", "0"], ["--torch-threads 0"]),
    (["--torch-threads", "100000"], ["--torch-threads 100000", "1024"]),
    (["--imitation-samples", "-1"], ["--imitation-samples -1"]),
    (["--imitation-samples", str(10**12)], [f"--imitation-samples {10**12}", "16777216"]),
    (["--device", "tpu"], ["--device", "invalid choice: 'tpu'"]),
    (["--run-name", "../up"], ["invalid run name '../up'"]),
    (["--run-name", "a b"], ["invalid run name 'a b'", "whitespace"]),
    (["--run-name", ""], ["invalid run name ''", "empty"]),
    (["--branch-name", "side"], ["branch name 'side'", "no parent checkpoint"]),
    (["--parent-checkpoint", PARENT, "--branch-name", "a/b"], ["invalid branch name 'a/b'"]),
    (["--parent-checkpoint", PARENT], [f"{PARENT}/checkpoints/ppo_mission_2000_steps.zip",
                                        "the checkpoint archive is damaged"]),  # the factory's fake bytes
    (["--no-tensorboard=yes"], ["--no-tensorboard", "ignored explicit argument 'yes'"]),
    (["--no-progress=1"], ["--no-progress", "ignored explicit argument '1'"]),
    (["--notes"], ["--notes", "expected one argument"]),
    (["--bogus-flag"], ["unrecognized arguments: --bogus-flag"]),
    (["--config-dir", "no-such-configs"], ["no-such-configs", "config directory not found"]),
    (["--config-dir", "README.md"], ["README.md", "config directory not found"]),
    (["--runs-dir", "README.md"], ["--runs-dir README.md", "is a file, not a folder"]),
]


@pytest.mark.parametrize("argv, needles", TRAIN_FLAG_CASES, ids=[" ".join(a) for a, _ in TRAIN_FLAG_CASES])
def test_train_flag(work, argv, needles):
    assert_refused(work, train(*TRAIN, *argv), *needles)


def test_train_with_an_empty_config_dir(work):
    (work / "empty").mkdir()
    assert_refused(work, train(*TRAIN, "--config-dir", "empty"), "empty/world.yaml", "file not found")


# --------------------------------------------------------------------------------------------- paths
def _symlink_out_of_runs(work: Path) -> str:
    outside = work / "elsewhere"
    outside.mkdir()
    shutil.copyfile(work / f"{CHECKPOINT}.zip", outside / "model.zip")
    link = work / "runs" / PARENT / "checkpoints" / "ppo_mission_3000_steps.zip"
    link.symlink_to(outside / "model.zip")
    return f"runs/{PARENT}/checkpoints/ppo_mission_3000_steps"


def _flipped_byte(work: Path) -> str:
    path = work / f"{CHECKPOINT}.zip"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return CHECKPOINT


def _truncated(work: Path) -> str:
    path = work / f"{CHECKPOINT}.zip"
    path.write_bytes(path.read_bytes()[:100])
    return CHECKPOINT


def _not_a_run_folder(work: Path) -> str:
    (work / "runs" / "stray").mkdir()
    return "runs/stray"


# kind -> (set-up returning the path to pass, needles for --parent-checkpoint, needles for evaluate --model)
PATH_KINDS: dict[str, tuple[Callable[[Path], str], list[str], list[str]]] = {
    "missing": (lambda w: "runs/no-such-run/checkpoints/ppo_mission_5_steps", ["checkpoint not found", "Tried:"],
                ["checkpoint not found", "no-such-run"]),
    "empty": (lambda w: "", ["empty checkpoint path"], ["empty checkpoint path"]),
    "folder": (_not_a_run_folder, ["checkpoint not found: 'runs/stray'"], ["checkpoint not found: 'runs/stray'"]),
    "file": (lambda w: "README.md", ["README.md is not a model file"], ["README.md is not a model file"]),
    "record": (lambda w: f"runs/{PARENT}/run.json", ["run.json is not a model file"], ["run.json is not a model file"]),
    "symlink out of runs": (_symlink_out_of_runs, ["is outside the runs folder"], ["is outside the runs folder"]),
    "flipped byte": (_flipped_byte, ["changed after run", "SHA-256"], ["changed after run", "SHA-256"]),
    "truncated": (_truncated, ["changed after run"], ["changed after run"]),
    "other scenario": (lambda w: OTHER, ["Observation space mismatch!", "Number of defenders: 3 -> 2"],
                       ["cannot be evaluated on configs", "Number of defenders: 3 -> 2 (configs/scenario.yaml)"]),
}


@pytest.mark.parametrize("kind", PATH_KINDS)
def test_parent_checkpoint_path(work, kind):
    setup, needles, _ = PATH_KINDS[kind]
    spec = setup(work)
    assert_refused(work, train(*TRAIN, "--parent-checkpoint", spec), *needles)


@pytest.mark.parametrize("kind", PATH_KINDS)
def test_evaluate_model_path(work, kind):
    setup, _, needles = PATH_KINDS[kind]
    spec = setup(work)
    assert_refused(work, evaluate_("--model", spec, "--config-dir", "configs"), *needles)


def test_incompatibility_report_names_the_config_dir_given(work):
    shutil.copytree(work / "configs", work / "my-configs")
    err = assert_refused(work, train(*TRAIN, "--parent-checkpoint", OTHER, "--config-dir", "my-configs"),
                         "(my-configs/scenario.yaml)", "restore my-configs/scenario.yaml")
    assert "configs/scenario.yaml" not in err.replace("my-configs/scenario.yaml", "")


# --------------------------------------------------------------------------------------------- evaluate flags
EVALUATE_FLAG_CASES = [
    (["--episodes", "3"], ["the following arguments are required: --model"]),
    (["--model", PARENT, "--episodes", "x"], ["--episodes", "invalid int value: 'x'"]),
    (["--model", CHECKPOINT, "--config-dir", "configs", "--episodes", "0"], ["--episodes 0", "ask for 1..8"]),
    (["--model", CHECKPOINT, "--config-dir", "configs", "--episodes", "1000000"], ["--episodes 1000000", "8 seeds"]),
    (["--model", CHECKPOINT, "--config-dir", "no-such-configs"], ["no-such-configs", "not found"]),
    (["--model", CHECKPOINT, "--config-dir", "README.md"], ["README.md", "not found"]),
    (["--model", CHECKPOINT], [f"{PARENT}/configs", "not found"]),
    (["--model", CHECKPOINT, "--config-dir", "configs", "--seeds-file", "/missing.txt"],
     ["/missing.txt: seed file not found"]),
    (["--model", CHECKPOINT, "--config-dir", "configs", "--seeds-file", "configs"], ["configs: is a folder"]),
    (["--model", CHECKPOINT, "--config-dir", "configs", "--seeds-file", "README.md"],
     ["README.md: no seeds"]),
    (["--model", CHECKPOINT, "--stochastic=yes"], ["--stochastic", "ignored explicit argument 'yes'"]),
    (["--model", CHECKPOINT, "--gif=1"], ["--gif", "ignored explicit argument '1'"]),
    (["--model", CHECKPOINT, "--runs-dir", "README.md"], ["--runs-dir README.md", "is a file, not a folder"]),
    (["--model", CHECKPOINT, "--bogus"], ["unrecognized arguments: --bogus"]),
]


@pytest.mark.parametrize("argv, needles", EVALUATE_FLAG_CASES, ids=[" ".join(a) for a, _ in EVALUATE_FLAG_CASES])
def test_evaluate_flag(work, argv, needles):
    assert_refused(work, evaluate_(*argv), *needles)


def test_seeds_file_not_found_does_not_talk_about_world_yaml(work):
    err = assert_refused(work, evaluate_("--model", CHECKPOINT, "--config-dir", "configs", "--seeds-file",
                                         "/missing.txt"), "/missing.txt")
    assert "world.yaml" not in err and "config directory" not in err


# --------------------------------------------------------------------------------------------- cleanup and dashboard
CLEANUP_FLAG_CASES = [
    ([], ["choose exactly one cleanup mode"]),
    (["--keep-lineage", "zen-comet"], ["no run named 'zen-comet'"]),
    (["--keep-lineage", PARENT[:8]], [f"no run named '{PARENT[:8]}'", f"did you mean: {PARENT}"]),
    (["--keep-lineage"], ["--keep-lineage", "expected one argument"]),
    (["--keep-active-lineage", "--delete-failed"], ["not allowed with argument --keep-active-lineage"]),
    (["--keep-active-lineage", "--keep-lineage", PARENT], ["not allowed with argument --keep-active-lineage"]),
    (["--delete-failed", "--runs-dir", "runz"], ["--runs-dir runz: no such folder"]),
    (["--delete-failed", "--runs-dir", "README.md"], ["--runs-dir README.md: is a file, not a folder"]),
    (["--delete-failed", "--dry-run=1"], ["--dry-run", "ignored explicit argument '1'"]),
    (["--delete-failed", "--yes=no"], ["--yes", "ignored explicit argument 'no'"]),
    (["--keep-active-lineage"], ["not deleting", "stdin is not a terminal", "--yes"]),
    (["--purge"], ["unrecognized arguments: --purge"]),
]


@pytest.mark.parametrize("argv, needles", CLEANUP_FLAG_CASES, ids=[" ".join(a) or "none" for a, _ in CLEANUP_FLAG_CASES])
def test_cleanup_flag(work, monkeypatch, argv, needles):
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False, raising=False)
    assert_refused(work, cleanup_(*argv), *needles)


DASHBOARD_FLAG_CASES = [
    (["--runs-dir", "runz"], ["--runs-dir runz: no such folder"]),
    (["--runs-dir", "README.md"], ["--runs-dir README.md: is a file, not a folder"]),
    (["--output", "runs"], ["--output runs: is a folder", "runs/dashboard.html"]),
    (["--output", "configs"], ["--output configs: is a folder"]),
    (["--output", "README.md/page.html"], ["README.md: "]),  # an OS error, worded without `[Errno N]`
    (["--lineage", "no-such-run"], ["no-such-run"]),
    (["--lineage"], ["--lineage", "expected one argument"]),
    (["--bogus"], ["unrecognized arguments: --bogus"]),
]


@pytest.mark.parametrize("argv, needles", DASHBOARD_FLAG_CASES, ids=[" ".join(a) for a, _ in DASHBOARD_FLAG_CASES])
def test_dashboard_flag(work, argv, needles):
    assert_refused(work, dashboard(*argv), *needles)


MISSION_GYM_CASES = [
    ([], ["no command given", "usage: mission-gym"]),
    (["fly"], ["unknown command 'fly'", "usage: mission-gym"]),
    (["train", "--learning-rate", "inf"], ["--learning-rate", "'inf' is not a finite number"]),
    (["evaluate", "--model", "nowhere"], ["checkpoint not found: 'nowhere'"]),
    (["cleanup", "--keep-lineage", "nowhere", "--dry-run"], ["no run named 'nowhere'"]),
    (["dashboard", "--runs-dir", "runz"], ["--runs-dir runz: no such folder"]),
]


@pytest.mark.parametrize("argv, needles", MISSION_GYM_CASES, ids=[" ".join(a) or "none" for a, _ in MISSION_GYM_CASES])
def test_mission_gym_command(work, argv, needles):
    assert_refused(work, mission_gym(*argv), *needles)


# --------------------------------------------------------------------------------------------- real processes
PROCESS_CASES = [
    (["-m", "mission_gym.scripts.train_ppo", *TRAIN, "--learning-rate", "inf"], ["'inf' is not a finite number"]),
    (["-m", "mission_gym.scripts.train_ppo", *TRAIN, "--seed", "99999999999999999999999"], ["4294967295"]),
    (["-m", "mission_gym.scripts.train_ppo", *TRAIN, "--runs-dir", "README.md"], ["is a file"]),
    (["-m", "mission_gym.scripts.evaluate", "--model", CHECKPOINT, "--config-dir", "configs", "--seeds-file",
      "/missing.txt"], ["seed file not found"]),
    (["-m", "mission_gym.scripts.run_utils", "--output", "runs"], ["is a folder"]),
    ([str(REPO / "cleanup_runs.py"), "--keep-lineage", "nowhere", "--runs-dir", "runs"], ["no run named"]),
]


@pytest.mark.slow
@pytest.mark.parametrize("argv, needles", PROCESS_CASES, ids=[" ".join(a[-2:]) for a, _ in PROCESS_CASES])
def test_real_process_prints_one_line(work, argv, needles):
    def command() -> tuple[int, str, str]:
        done = run_cli(argv, cwd=work)
        return done.returncode, done.stdout, done.stderr

    err = assert_refused(work, command, *needles)
    assert err.count("\n") == 1, err


@pytest.mark.slow
def test_nan_config_in_a_real_process_trains_nothing(work):
    """The issue's own case: `weight: .nan` used to train an all-NaN model and exit 0."""
    reward = work / "configs" / "reward.yaml"
    reward.write_text(reward.read_text().replace("win_bonus: {weight: 200.0", "win_bonus: {weight: .nan", 1))

    def command() -> tuple[int, str, str]:
        done = run_cli(["-m", "mission_gym.scripts.train_ppo", *TRAIN], cwd=work)
        return done.returncode, done.stdout, done.stderr

    assert_refused(work, command, "configs/reward.yaml: components.win_bonus.weight = nan")


# --------------------------------------------------------------------------------------------- real checkpoints
@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny trained run (made once for the module): damaged real archives whose record matches them."""
    folder = make_workdir(tmp_path_factory.mktemp("real") / "project")
    done = run_cli(["-m", "mission_gym.scripts.train_ppo", *TINY, "--timesteps", "256", "--imitation-samples", "0",
                    "--no-tensorboard", "--run-name", "real", "--checkpoint-freq", "256"], cwd=folder)
    assert done.returncode == 0, done.stderr
    return folder


def _damage_and_rerecord(work: Path, damage: Callable[[bytes], bytes]) -> str:
    """Damage the run's checkpoint and record the damaged file's hash, as if it had been written that way."""
    (run,) = [p for p in (work / "runs").iterdir() if p.name.startswith("real-")]
    path = run / "checkpoints" / "ppo_mission_256_steps.zip"
    path.write_bytes(damage(path.read_bytes()))
    data = record(run)
    for entry in data["checkpoints"]:
        if entry["file"].endswith(path.name):
            entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (run / "run.json").write_text(json.dumps(data, indent=2))
    return str(path.relative_to(work).with_suffix(""))


def _flip_in_the_middle(data: bytes) -> bytes:
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0xFF
    return bytes(flipped)


REAL_DAMAGE = {"truncated zip": lambda data: data[: len(data) // 2], "flipped byte": _flip_in_the_middle}


@pytest.mark.slow
@pytest.mark.parametrize("damage", REAL_DAMAGE)
def test_damaged_real_checkpoint_whose_record_matches(real_run, tmp_path, monkeypatch, damage):
    work = tmp_path / "project"
    shutil.copytree(real_run, work, symlinks=True)
    monkeypatch.chdir(work)
    spec = _damage_and_rerecord(work, REAL_DAMAGE[damage])
    for command in (train(*TRAIN, "--parent-checkpoint", spec),
                    evaluate_("--model", spec, "--episodes", "1")):
        assert_refused(work, command, "ppo_mission_256_steps.zip: the checkpoint archive is damaged")


# --------------------------------------------------------------------------------------------- the limits hold
def test_the_largest_accepted_values_simulate_with_finite_numbers(tmp_path):
    """The limits are where the code still works: with every limit reached at once (a 2 km arena, whose route
    grid has a million cells, 1e6 m/s units, 1e9 decisions an episode), observations and rewards stay finite."""
    import numpy as np

    from mission_gym.vec_env import MissionVecEnv

    configs = make_workdir(tmp_path / "project") / "configs"

    def edit(name: str, change: Callable[[Any], None]) -> None:
        data = yaml.load((configs / name).read_text(), Loader=YamlLoader)
        change(data)
        (configs / name).write_text(yaml.safe_dump(data))

    def fastest(catalog: Any) -> None:
        for unit in catalog["unit_types"].values():
            unit.update(max_speed=1e6, max_accel=1e6, max_turn_rate_deg=1e6)

    edit("world.yaml", lambda w: (w["arena"].update(width=2000.0, height=2000.0),
                                  w["physics"].update(max_episode_seconds=1e6, tick_hz=1000, action_repeat=1)))
    edit("units_attackers.yaml", fastest)
    edit("units_defenders.yaml", fastest)
    config = load_config(configs)
    assert config.max_decisions == 10**9
    env = MissionVecEnv(2, config, seed=1)
    env.action_space.seed(1)
    observations = env.reset()
    for _ in range(50):
        observations, rewards, _, _ = env.step(np.array([env.action_space.sample() for _ in range(2)]))
        assert np.isfinite(observations).all() and np.isfinite(rewards).all()
