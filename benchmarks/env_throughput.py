"""Environment throughput: decisions per second of the batched simulation core, on one CPU core.

    .venv/bin/python benchmarks/env_throughput.py [--seconds S] [--no-pin]

For the default scenario (4 attackers / 2 defenders) and a generated 16 / 8 one, it measures
  - one env through ``gymnasium.make("MissionGym-v0")`` (with Gymnasium's wrappers), random actions;
  - the batched ``MissionVecEnv`` at N = 1, 16 and 256 arenas (decisions/s = arenas x steps/s);
  - the memory a VecEnv of 256 arenas takes: process RSS growth and the bytes of its state arrays;
and, in fresh subprocesses, the first-call time: import + env creation + reset + first step, once with an empty
kernel cache (numba compiles everything) and once with the warm cache.

Actions are drawn up front, so the numbers are the env's cost, not the sampler's. Episodes end and auto-reset
as in training (random play mostly stalls after 30 s). The process is pinned to one CPU (the kernel is serial;
training runs it beside torch on a 2-core machine) unless --no-pin.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# One thread for every numeric library, before any of them loads.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import gymnasium  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402

import mission_gym  # noqa: E402, F401  (registers MissionGym-v0)
from mission_gym.config import load_config, obstacle_clearance  # noqa: E402
from mission_gym.vec_env import MissionVecEnv  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"
OLDER_SYSTEM = {"default (4 att / 2 def)": 3_800.0, "16 att / 8 def": 920.0}  # decisions/s, one env, one core
TARGET_VEC_256 = 100  # x the older system, batched core at N = 256 on one core
TARGET_GYM = 10  # x the older system, one env through gymnasium.make
ARENA_COUNTS = (1, 16, 256)


# ----------------------------------------------------------------------------- the 16 / 8 scenario
def write_large_scenario(dest: Path, attackers: int = 16, defenders: int = 8) -> Path:
    """Copy configs/ to `dest` with `attackers` / `defenders` slots: the default slots' unit types repeated,
    attackers on a grid in the south-west corner, defenders on a ring around the objective, each ground spawn
    clear of obstacles."""
    import shutil

    shutil.copytree(CONFIGS, dest)
    config = load_config(CONFIGS)
    scenario = yaml.safe_load((dest / "scenario.yaml").read_text())
    obstacles = config.world.obstacles

    def clear(x: float, y: float, radius: float) -> bool:
        return all(obstacle_clearance(ob, (x, y)) >= radius + 1.0 for ob in obstacles)

    base_attackers = scenario["attackers"]
    grid = [(8.0 + 9.0 * i, 8.0 + 9.0 * j) for j in range(6) for i in range(6)]
    slots = []
    for k in range(attackers):
        slot = base_attackers[k % len(base_attackers)]
        radius = config.attacker_types[slot["unit_type"]].radius
        x, y = next(p for p in grid if clear(*p, radius + 5.0))  # + spawn jitter
        grid.remove((x, y))
        slots.append({"unit_type": slot["unit_type"], "spawn": {"x": x, "y": y, "heading": 45.0}})
    scenario["attackers"] = slots

    ox, oy = scenario["objective"]["x"], scenario["objective"]["y"]
    base_defenders = scenario["defenders"]
    slots = []
    for k in range(defenders):
        slot = base_defenders[k % len(base_defenders)]
        radius = config.defender_types[slot["unit_type"]].radius
        # The first clear spot near this defender's place on the ring (a jittered spawn that lands in an
        # obstacle falls back to this one).
        x, y, ring, angle = next(
            (ox + ring * np.cos(angle), oy + ring * np.sin(angle), ring, angle)
            for ring in (28.0, 34.0, 40.0, 22.0)
            for angle in 2 * np.pi * k / defenders + np.array([0.0, 0.15, -0.15, 0.3, -0.3])
            if clear(ox + ring * np.cos(angle), oy + ring * np.sin(angle), radius + 2.0))
        waypoints = [[float(ox + ring * np.cos(angle + d)), float(oy + ring * np.sin(angle + d))]
                     for d in (-0.4, 0.0, 0.4, 0.0)]
        slots.append({"unit_type": slot["unit_type"], "spawn": {"x": float(x), "y": float(y), "heading": 0.0},
                      "patrol_waypoints": waypoints})
    scenario["defenders"] = slots
    (dest / "scenario.yaml").write_text(yaml.safe_dump(scenario, sort_keys=False))
    load_config(dest)  # validate
    return dest


# ----------------------------------------------------------------------------- measuring
def rss_bytes() -> int:
    """Resident set size of this process now (Linux /proc), or the peak where /proc is missing."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def timed(step: Callable[[int], None], seconds: float, warmup: int = 20) -> tuple[int, float]:
    """Call step(i) for at least `seconds` of wall time after a warmup; return (calls, elapsed)."""
    for i in range(warmup):
        step(i)
    calls, started = 0, time.perf_counter()
    while True:
        for _ in range(50):
            step(calls)
            calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return calls, elapsed


def gym_env_rate(config_dir: Path, seconds: float) -> float:
    """Decisions/s of one env made by gymnasium.make, random actions, resetting at each episode end."""
    env = gymnasium.make("MissionGym-v0", config_dir=config_dir)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.integers(0, env.action_space.nvec, size=(4096, len(env.action_space.nvec)))

    def step(i: int) -> None:
        _, _, terminated, truncated, _ = env.step(actions[i % len(actions)])
        if terminated or truncated:
            env.reset()

    calls, elapsed = timed(step, seconds)
    env.close()
    return calls / elapsed


def vec_env_rate(config, n: int, seconds: float) -> tuple[float, dict[str, int]]:
    """Decisions/s of a MissionVecEnv of n arenas (random actions, auto-reset), and its memory."""
    before = rss_bytes()
    vec = MissionVecEnv(n, config, seed=0)
    vec.reset()
    rng = np.random.default_rng(0)
    nvec = vec.action_space.nvec
    actions = rng.integers(0, nvec, size=(max(8, 4096 // n), n, len(nvec)))
    calls, elapsed = timed(lambda i: vec.step(actions[i % len(actions)]), seconds / 2 if n == 1 else seconds)
    sim = vec.sim
    arrays = (sim.units, sim.brains, sim.known, sim.arena, sim.waypoints, sim.rng, sim.route_fields.fields,
              sim.field_slots, sim.raw_rewards, sim.reward_components, sim.episode_reward_components, sim.rewards,
              sim.observations, *sim.params)
    memory = {"rss_delta": rss_bytes() - before, "array_bytes": int(sum(a.nbytes for a in arrays)),
              "route_fields": int(sim.route_fields.fields.nbytes)}
    return calls * n / elapsed, memory


FIRST_CALL = r"""
import json, sys, time
started = time.perf_counter()
import mission_gym
from mission_gym.env import MissionGymEnv
imported = time.perf_counter()
env = MissionGymEnv(config_dir=sys.argv[1])
made = time.perf_counter()
env.reset(seed=0)
env.step(env.action_space.sample())
stepped = time.perf_counter()
print(json.dumps({"import": imported - started, "create": made - imported, "first_step": stepped - made,
                  "total": stepped - started}))
"""


def first_call(config_dir: Path, cache_dir: str | None) -> dict[str, float]:
    """Import + create + reset + first step in a fresh interpreter; cache_dir None keeps the usual cache."""
    env = dict(os.environ)
    if cache_dir is not None:
        env["MISSION_GYM_CACHE_DIR"] = cache_dir
    out = subprocess.run([sys.executable, "-c", FIRST_CALL, str(config_dir)], env=env, capture_output=True,
                         text=True, check=True, cwd=REPO)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- report
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="wall time per measurement (default 2)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the process to one CPU")
    args = parser.parse_args()

    pinned = "not pinned"
    if not args.no_pin and hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        pinned = f"pinned to CPU {cpu}"
    print(f"Mission Gym env throughput: Python {sys.version.split()[0]}, numpy {np.__version__}, "
          f"{os.cpu_count()} CPUs, {pinned}; {args.seconds:g} s per measurement\n")

    with tempfile.TemporaryDirectory() as tmp:
        scenarios = {"default (4 att / 2 def)": CONFIGS,
                     "16 att / 8 def": write_large_scenario(Path(tmp) / "large")}

        # Compile times first, while this process has not yet loaded the kernels (it does not matter for the
        # subprocesses, but keeps the order of the report natural).
        cold = first_call(CONFIGS, cache_dir=str(Path(tmp) / "empty-cache"))
        first_call(CONFIGS, cache_dir=None)  # make sure the usual cache is populated
        warm = first_call(CONFIGS, cache_dir=None)

        rows, memory = [], {}
        for name, config_dir in scenarios.items():
            config = load_config(config_dir)
            older = OLDER_SYSTEM[name]
            rate = gym_env_rate(config_dir, args.seconds)
            rows.append((name, "gymnasium.make, 1 env", rate, older))
            for n in ARENA_COUNTS:
                rate, mem = vec_env_rate(config, n, args.seconds)
                rows.append((name, f"MissionVecEnv, N = {n}", rate, older))
                if n == max(ARENA_COUNTS):
                    memory[name] = mem

    header = f"{'scenario':<24} {'path':<24} {'decisions/s':>12} {'older system':>13} {'ratio':>8}"
    print(header)
    print("-" * len(header))
    for name, path, rate, older in rows:
        print(f"{name:<24} {path:<24} {rate:>12,.0f} {older:>13,.0f} {rate / older:>7,.1f}x")

    print(f"\nTargets: gymnasium.make >= {TARGET_GYM}x and VecEnv N = 256 >= {TARGET_VEC_256}x the older system")
    for name, path, rate, older in rows:
        if path.startswith("gymnasium") or path.endswith(f"= {max(ARENA_COUNTS)}"):
            target = TARGET_GYM if path.startswith("gymnasium") else TARGET_VEC_256
            verdict = "met" if rate >= target * older else "MISSED"
            print(f"  {name:<24} {path:<24} {rate / older:>7,.1f}x  (target {target}x: {verdict})")

    print(f"\nMemory of a VecEnv of {max(ARENA_COUNTS)} arenas:")
    for name, mem in memory.items():
        print(f"  {name:<24} RSS +{mem['rss_delta'] / 2**20:6.1f} MiB   state/param arrays "
              f"{mem['array_bytes'] / 2**20:6.2f} MiB (route fields {mem['route_fields'] / 2**20:.2f} MiB)")

    print("\nFirst call (fresh interpreter: import + create env + reset + first step), default scenario:")
    for label, t in (("cold kernel cache (compile)", cold), ("warm kernel cache", warm)):
        print(f"  {label:<28} {t['total']:6.2f} s   (import {t['import']:.2f} s, create {t['create']:.2f} s, "
              f"reset + first step {t['first_step']:.2f} s)")


if __name__ == "__main__":
    main()
