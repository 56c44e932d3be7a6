"""What stops a training run early without losing it: termination signals and numbers that diverged.

A scheduler stops a job with SIGTERM (Kubernetes, Slurm, systemd, `kill`), a closed terminal sends SIGHUP;
both are handled like Ctrl-C. A model whose loss, gradients or parameters stopped being finite has
diverged: training must stop before such a model is ever saved.
"""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from mission_gym.errors import MissionGymError

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class TerminationRequested(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived before training began: stop like Ctrl-C (a KeyboardInterrupt subclass, so
    every place that already lets Ctrl-C through lets this through too)."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


class DivergedError(MissionGymError):
    """The loss, a gradient or a parameter is no longer a finite number."""


def signal_exit_status(reason: str | None, default: int) -> int:
    """The shell's exit status for a process stopped by signal `reason` ('SIGTERM': 143), else `default`."""
    names = signal.Signals.__members__
    return 128 + names[reason].value if reason in names else default


@contextmanager
def stop_signals(on_signal: Callable[[str], None]) -> Iterator[None]:
    """While inside, SIGTERM and SIGHUP call `on_signal(name)` (which may raise TerminationRequested); any
    later one is ignored, so the final save it triggers cannot itself be cut short. A signal the process
    ignores already is left ignored; outside the main thread (where Python cannot install handlers) this
    does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        for other in previous:
            signal.signal(other, signal.SIG_IGN)
        on_signal(signal.Signals(signum).name)

    # A signal already ignored stays ignored: `nohup` training must survive its terminal closing (SIGHUP).
    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS if signal.getsignal(sig) != signal.SIG_IGN}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def non_finite_part(model: Any) -> str | None:
    """What is not finite in a PPO model after an update (its last logged losses, its gradients where torch
    kept them, its parameters), or None when everything is finite. A non-finite gradient always reaches the
    parameters through clipping and Adam, so the compiled update, which keeps no gradients, is covered too."""
    for key, value in model.logger.name_to_value.items():
        if key.startswith("train/") and isinstance(value, (float, np.floating)) and not math.isfinite(value):
            return f"{key} is {value}"
    for name, param in model.policy.named_parameters():
        if param.grad is not None and not bool(torch.isfinite(param.grad).all()):
            return f"the gradient of {name} is not finite"
    return non_finite_parameter(model.policy)


def non_finite_parameter(network: torch.nn.Module) -> str | None:
    """'parameter <name> is not finite' for the first parameter holding NaN or infinity, else None."""
    for name, param in network.named_parameters():
        if not bool(torch.isfinite(param).all()):
            return f"parameter {name} is not finite"
    return None


def check_finite(model: Any, step: int) -> None:
    """DivergedError ('diverged at step N: ...') when `model` holds a non-finite number."""
    problem = non_finite_part(model)
    if problem is not None:
        raise DivergedError(f"diverged at step {step}: {problem}")
