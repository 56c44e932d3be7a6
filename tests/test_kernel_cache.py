"""The compiled-kernel cache never runs stale rules, and is reused when nothing changed.

The kernels freeze module-level values (here the ring radii) as constants when they compile, so a cache
keyed on the wrong files would silently replay the old rules after an edit. This test works on a copy of
the package with its own cache folder, and steps it in fresh processes, as a user re-running a command would.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each run compiles the kernels from scratch (~30 s)

REPO = Path(__file__).resolve().parents[1]

# One scripted-baseline episode; prints how many rings the closest attacker crossed and the cache folder used.
EPISODE = """
import json, sys, time
import numba
from mission_gym.baseline import ScriptedAttackerPolicy
from mission_gym.env import MissionGymEnv

env = MissionGymEnv(sys.argv[1])
policy = ScriptedAttackerPolicy(env.config)
start = time.perf_counter()
obs, _ = env.reset(seed=3)
obs, _, terminated, truncated, info = env.step(policy.predict(obs)[0])
first_calls_s = time.perf_counter() - start  # the first reset and step load (or compile) the kernels
while not (terminated or truncated):
    obs, _, terminated, truncated, info = env.step(policy.predict(obs)[0])
weight = env.config.reward.components["ring_bonus"].weight
rings = info["episode_reward_components"]["ring_bonus"] / weight
print(json.dumps({"rings": rings, "cache": numba.config.CACHE_DIR, "first_calls_s": first_calls_s}))
"""


def _run_episode(package_root: Path, cache_root: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(package_root), "MISSION_GYM_CACHE_DIR": str(cache_root)}
    done = subprocess.run([sys.executable, "-c", EPISODE, str(REPO / "configs")], env=env, cwd=package_root,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _set_ring_radii(package: Path, radii: str) -> None:
    """Rewrite the ring radii wherever the package defines them."""
    pattern = re.compile(r"^RING_RADII = .*$", re.MULTILINE)
    homes = [p for p in package.rglob("*.py") if pattern.search(p.read_text())]
    assert len(homes) == 1, f"expected one definition of RING_RADII, found {homes}"
    homes[0].write_text(pattern.sub(f"RING_RADII = {radii}", homes[0].read_text()))


def test_edited_rule_compiles_afresh_and_unchanged_sources_reuse_the_cache(tmp_path: Path) -> None:
    shutil.copytree(REPO / "mission_gym", tmp_path / "mission_gym", ignore=shutil.ignore_patterns("__pycache__"))
    cache_root = tmp_path / "cache"

    before = _run_episode(tmp_path, cache_root)
    assert before["rings"] >= 2  # the baseline closes in past several of the default rings

    again = _run_episode(tmp_path, cache_root)
    assert again == {**again, "rings": before["rings"], "cache": before["cache"]}
    assert again["first_calls_s"] < 5.0, again  # loaded from the cache (~1 s), not compiled (~30 s)

    _set_ring_radii(tmp_path / "mission_gym", "(1.0,)")
    after = _run_episode(tmp_path, cache_root)
    assert after["rings"] <= 1, after  # the one new ring, not the old five
    assert after["cache"] != before["cache"]
