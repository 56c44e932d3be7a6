"""A sequential paired test: is one policy better than another at capturing, on the same seeds?

Two policies play the same seeds in order. A seed where both capture, or neither does, says nothing about
which is better; only the *discordant* seeds do, those where exactly one captures. Among them let ``p`` be the
share our policy wins. Under "no difference" ``p = 1/2``; the indifference margin ``m`` says what difference is
worth finding: ``p = 1/2 + m`` is "better", ``p = 1/2 - m`` is "worse".

Two one-sided sequential probability ratio tests (Wald's SPRT, combined as Sobel and Wald did for three
hypotheses) run side by side on the discordant seeds, each at level ``alpha / 2``:

- better:  H0 ``p = 1/2`` against H1 ``p = 1/2 + m``;
- worse:   H0 ``p = 1/2`` against H1 ``p = 1/2 - m``.

After every group of seeds (a group is one batched pass of the environment), the first test that crosses its
upper boundary decides "better" or "worse"; when both have crossed their lower boundaries the answer is "no
difference at this margin". Wald's bounds give P(a difference is declared | none) <= alpha and P("better" is
missed | p = 1/2 + m) <= beta when the seeds do not run out; checking only after whole groups and stopping at
the end of the seed list ("undecided") can only lower both error rates. A clear difference is usually decided
in a few dozen seeds where a fixed-sample evaluation plays all of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from mission_gym.errors import MissionGymError

Decision = Literal["better", "worse", "no difference", "undecided"]
Z_95 = 1.959963984540054


@dataclass(frozen=True)
class SequentialDesign:
    """Error rates and margin of the test, and how many seeds are played between two looks."""

    alpha: float = 0.05  # P(declare "better" or "worse" | no difference), both sides together
    beta: float = 0.05  # P(miss "better" | p = 1/2 + margin), and likewise for "worse"
    margin: float = 0.2  # indifference margin on the discordant share p
    group: int = 10  # seeds per look

    def __post_init__(self) -> None:
        checks = {"alpha": 0 < self.alpha < 1, "beta": 0 < self.beta < 1, "margin": 0 < self.margin < 0.5,
                  "group": isinstance(self.group, int) and self.group >= 1}
        for name, ok in checks.items():
            if not ok:
                raise MissionGymError(f"sequential test: {name}={getattr(self, name)!r} is out of range "
                                      "(alpha, beta in (0, 1); margin in (0, 0.5); group a positive integer)")

    @property
    def upper(self) -> float:
        """Log-likelihood ratio at which a one-sided test accepts its alternative."""
        return math.log((1 - self.beta) / (self.alpha / 2))

    @property
    def lower(self) -> float:
        """Log-likelihood ratio at which a one-sided test accepts ``p = 1/2``."""
        return math.log(self.beta / (1 - self.alpha / 2))

    def hypotheses(self) -> str:
        """The hypotheses in words, for reports."""
        half, m = 0.5, self.margin
        return (f"among seeds where exactly one policy captures, p = share won by this policy; "
                f"H0: p = {half:g}; 'better': p = {half + m:g}; 'worse': p = {half - m:g}; "
                f"alpha = {self.alpha:g} (both sides), beta = {self.beta:g}; checked every {self.group} seeds")


def log_likelihood_ratios(ours: np.ndarray | int, theirs: np.ndarray | int,
                          margin: float) -> tuple[np.ndarray, np.ndarray]:
    """LLRs of "better" and of "worse" against ``p = 1/2`` after ``ours`` seeds only we captured and ``theirs``
    seeds only they captured (arrays broadcast, so many sequences can be tested at once)."""
    win, loss = math.log((0.5 + margin) / 0.5), math.log((0.5 - margin) / 0.5)
    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    return ours * win + theirs * loss, theirs * win + ours * loss


def decide(ours: np.ndarray | int, theirs: np.ndarray | int, design: SequentialDesign) -> np.ndarray:
    """The decision after these discordant counts: "better", "worse", "no difference", or "" to go on."""
    better, worse = log_likelihood_ratios(ours, theirs, design.margin)
    return np.select([better >= design.upper, worse >= design.upper,
                      (better <= design.lower) & (worse <= design.lower)],
                     ["better", "worse", "no difference"], default="")


@dataclass(frozen=True)
class SequentialResult:
    """What a sequential comparison decided and the evidence it used."""

    decision: Decision
    episodes: int  # seeds played by each policy
    seeds_available: int
    both_captured: int
    only_ours: int
    only_theirs: int
    neither: int
    llr_better: float
    llr_worse: float
    capture_rate_difference: float  # ours minus theirs, on the seeds played
    capture_rate_difference_ci: tuple[float, float]
    design: SequentialDesign

    @property
    def episodes_saved(self) -> int:
        """Seeds a fixed-sample evaluation on the whole list would have played on top of these."""
        return self.seeds_available - self.episodes

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with the hypotheses in words."""
        out = asdict(self)
        out["capture_rate_difference_ci"] = list(self.capture_rate_difference_ci)
        out["episodes_saved"] = self.episodes_saved
        out["hypotheses"] = self.design.hypotheses()
        return out


def sequential_compare(play: Callable[[Sequence[int]], tuple[Sequence[bool], Sequence[bool]]],
                       seeds: Sequence[int], design: SequentialDesign | None = None) -> SequentialResult:
    """Play ``seeds`` in groups until the test decides or the seeds run out.

    ``play(group)`` plays both policies on the seeds of one group and returns, per seed and in order, whether
    ours captured and whether theirs did.
    """
    design = design or SequentialDesign()
    if not seeds:
        raise MissionGymError("sequential test: the seed list is empty; give at least one seed")
    ours_all: list[bool] = []
    theirs_all: list[bool] = []
    decision: Decision = "undecided"
    for start in range(0, len(seeds), design.group):
        group = list(seeds[start:start + design.group])
        ours, theirs = play(group)
        if len(ours) != len(group) or len(theirs) != len(group):
            raise ValueError(f"play returned {len(ours)} and {len(theirs)} outcomes for {len(group)} seeds")
        ours_all += map(bool, ours)
        theirs_all += map(bool, theirs)
        step = str(decide(*_discordant(ours_all, theirs_all), design))
        if step:
            decision = step  # type: ignore[assignment]
            break
    return _result(decision, ours_all, theirs_all, len(seeds), design)


def _discordant(ours: Sequence[bool], theirs: Sequence[bool]) -> tuple[int, int]:
    only_ours = sum(a and not b for a, b in zip(ours, theirs, strict=True))
    only_theirs = sum(b and not a for a, b in zip(ours, theirs, strict=True))
    return only_ours, only_theirs


def paired_difference_interval(only_ours: int, only_theirs: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wald interval of the paired difference of capture rates, (b - c) / n, with Agresti-Min's +1/2 adjustment
    of every cell so that it stays informative when a count is zero."""
    if n == 0:
        return -1.0, 1.0
    b, c, total = only_ours + 0.5, only_theirs + 0.5, n + 2.0
    diff = (b - c) / total
    half = z * math.sqrt(max((b + c) / total - diff * diff, 0.0) / total)
    return max(-1.0, diff - half), min(1.0, diff + half)


def paired_verdict(paired: dict[str, Any]) -> str:
    """One line a person reads: "better: captured where the other did not on 25 seeds, the reverse on 6 (capture
    rate +19%, 95% CI +8% to +30%)". Reports written before the verdict existed give the counts alone."""
    counts = (f"captured where the other did not on {paired['only_ours_captured']} seeds, the reverse on "
              f"{paired['only_theirs_captured']}")
    if "verdict" not in paired:
        return counts
    low, high = paired["capture_rate_difference_ci"]
    return (f"{paired['verdict']}: {counts} (capture rate {paired['capture_rate_difference']:+.0%}, "
            f"95% CI {low:+.0%} to {high:+.0%})")


def _result(decision: Decision, ours: list[bool], theirs: list[bool], available: int,
            design: SequentialDesign) -> SequentialResult:
    only_ours, only_theirs = _discordant(ours, theirs)
    better, worse = log_likelihood_ratios(only_ours, only_theirs, design.margin)
    n = len(ours)
    return SequentialResult(
        decision=decision, episodes=n, seeds_available=available,
        both_captured=sum(a and b for a, b in zip(ours, theirs)), only_ours=only_ours, only_theirs=only_theirs,
        neither=sum(not a and not b for a, b in zip(ours, theirs)),
        llr_better=float(better), llr_worse=float(worse),
        capture_rate_difference=(only_ours - only_theirs) / n if n else 0.0,
        capture_rate_difference_ci=paired_difference_interval(only_ours, only_theirs, n), design=design,
    )


def sequential_markdown(result: SequentialResult, ours: str, theirs: str) -> str:
    """The decision, its evidence and the test's design, as a markdown section."""
    low, high = result.capture_rate_difference_ci
    verdict = {"better": f"{ours} is better than {theirs}", "worse": f"{ours} is worse than {theirs}",
               "no difference": f"no difference between {ours} and {theirs} at this margin",
               "undecided": "undecided: the seed list ran out before the test could decide"}[result.decision]
    return "\n".join([
        f"## Sequential paired test: {verdict}",
        "",
        f"- Episodes: {result.episodes} of {result.seeds_available} seeds ({result.episodes_saved} saved)",
        f"- Captured by {ours} only: {result.only_ours}; by {theirs} only: {result.only_theirs}; by both: "
        f"{result.both_captured}; by neither: {result.neither}",
        f"- Capture-rate difference: {result.capture_rate_difference:+.1%} (95% CI {low:+.1%} to {high:+.1%})",
        f"- Log-likelihood ratios: better {result.llr_better:+.2f}, worse {result.llr_worse:+.2f} "
        f"(decide at {result.design.upper:.2f}, accept p = 1/2 at {result.design.lower:.2f})",
        f"- Design: {result.design.hypotheses()}",
        "",
    ])
