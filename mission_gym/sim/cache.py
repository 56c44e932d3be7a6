"""Where numba caches the compiled kernels: a folder named after everything the kernels are built from.

numba keys its on-disk cache on the bytecode of each function and the file that defines it, but a kernel also
freezes the module-level values it reads (ring radii, column indices, action codes) as compile-time constants,
and those come from other files. So the folder's name hashes the sources of every ``mission_gym`` module the
simulation imports, found by following its import statements (not a hand-kept list), plus the numba and numpy
versions and the CPU target: any edit to the game's rules selects a fresh folder and compiles afresh, while an
unchanged checkout reuses its kernels. ``check_covered`` verifies, once the kernels are defined, that every
module they loaded is part of the key, so the import scan cannot silently miss one.
"""

import ast
import hashlib
import os
import sys
from pathlib import Path

import llvmlite.binding
import numba
import numpy

_PACKAGE = "mission_gym"
_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the mission_gym package


def _module_file(name: str) -> Path | None:
    """The source file of a ``mission_gym`` module name, or None for a name that is not a module."""
    path = _ROOT.joinpath(*name.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").is_file() else None


def _with_parents(name: str) -> list[str]:
    """A module and the packages above it, which Python imports first."""
    parts = name.split(".")
    return [".".join(parts[: k + 1]) for k in range(len(parts))]


def _imported_names(name: str, source: str) -> set[str]:
    """The ``mission_gym`` modules one module's import statements (anywhere in it) load."""
    package = name if _module_file(name).name == "__init__.py" else name.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: `from . import x`, `from ..m import y`
                anchor = package.rsplit(".", node.level - 1)[0]
                base = f"{anchor}.{base}" if base else anchor
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import submodule`
    return {n for n in names if n.split(".")[0] == _PACKAGE and _module_file(n) is not None}


def dependencies(roots: tuple[str, ...]) -> dict[str, bytes]:
    """Source of every ``mission_gym`` module that importing the ``roots`` loads, by module name."""
    sources: dict[str, bytes] = {}
    pending = [name for root in roots for name in _with_parents(root)]
    while pending:
        name = pending.pop()
        if name in sources:
            continue
        sources[name] = _module_file(name).read_bytes()
        for imported in _imported_names(name, sources[name].decode()):
            pending.extend(_with_parents(imported))
    return sources


def cache_key(sources: dict[str, bytes]) -> str:
    """Hash of module sources (by name), the numba and numpy versions and the CPU target."""
    digest = hashlib.sha256()
    for name, source in sorted(sources.items()):
        digest.update(name.encode() + b"\0" + hashlib.sha256(source).digest())
    cpu = numba.config.CPU_NAME or llvmlite.binding.get_host_cpu_name()
    digest.update(f"numba {numba.__version__} numpy {numpy.__version__} cpu {cpu}".encode())
    return digest.hexdigest()[:16]


def cache_dir(sources: dict[str, bytes]) -> str:
    """The folder of kernels built from ``sources``: ``$MISSION_GYM_CACHE_DIR`` (or ~/.cache/mission_gym)/key."""
    base = os.environ.get("MISSION_GYM_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), _PACKAGE
    )
    return os.path.join(base, f"kernels-{cache_key(sources)}")


def loaded_modules() -> set[str]:
    """Names of the ``mission_gym`` modules imported so far."""
    return {name for name in sys.modules if name.split(".")[0] == _PACKAGE}


def check_covered(sources: dict[str, bytes], loaded_before: set[str]) -> None:
    """Fail if defining the kernels loaded a ``mission_gym`` module the cache key does not hash."""
    missed = loaded_modules() - loaded_before - set(sources)
    if missed:
        raise RuntimeError(f"the kernel cache key misses module(s) {sorted(missed)} that the kernels load; "
                           "import them with a plain import statement so that mission_gym.sim.cache finds them")
