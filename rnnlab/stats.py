"""Comparing two groups of per-seed results, and turning the comparison into a verdict.

An experiment of the book trains the same configuration under several seeds and ends
with one number per seed: steps to solve a task, an accuracy, the longest length
generalised to. To say whether configuration A did better than configuration B we use

- an **effect size**, Cliff's delta (Cliff 1993): the probability that a seed of A
  scores above a seed of B minus the probability that it scores below,
  ``delta = P(a > b) - P(a < b)``, in [-1, 1]; 0 means neither tends to score higher,
  1 that every seed of A beat every seed of B. Its "common-language" reading
  (McGraw and Wong 1992; Vargha and Delaney 2000) is ``(1 + delta) / 2``, the chance
  that a random seed of A beats a random seed of B (ties counting half). It is rank
  based, so a seed that never solved a task can be entered as the budget it exhausted
  (or ``inf``) without inventing a number for it;
- the **difference of medians**, ``median(a) - median(b)``, in the units of the metric,
  for the text;
- a **bootstrap 95 % confidence interval** for each of the two, from
  ``scipy.stats.bootstrap`` (percentile method, resampling each group on its own);
- a **rank test**, the two-sided Mann-Whitney U test (``scipy.stats.mannwhitneyu``);
- **Holm's correction** (Holm 1979) of the p-values over the family of comparisons
  made on one page, so that the chance of any false "supported" on the page, when no
  difference is real, stays at most ``alpha``;
- :func:`verdict`, which turns a corrected comparison into one of the words
  "supported", "not shown", "contradicted", "untested".

Sources: Cliff, N. (1993), Dominance statistics: ordinal analyses to answer ordinal
questions, Psychological Bulletin 114(3); Holm, S. (1979), A simple sequentially
rejective multiple test procedure, Scandinavian Journal of Statistics 6(2); Mann, H. B.
and Whitney, D. R. (1947); Efron, B. and Tibshirani, R. (1993), An Introduction to the
Bootstrap, chapter 13;
SciPy's ``scipy.stats.mannwhitneyu`` and ``scipy.stats.bootstrap``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats as _scipy_stats

from ._checks import describe

__all__ = ["Comparison", "cliffs_delta", "compare", "holm", "correct", "verdict",
           "VERDICTS", "ALPHA"]

ALPHA = 0.05
"""The family-wise error rate of a page: Holm-corrected p-values are compared with it."""

VERDICTS = ("supported", "not shown", "contradicted", "untested")
"""The four verdict words, in the order the book's tables explain them."""


def _as_values(name: str, values) -> np.ndarray:
    """Per-seed values as a 1-D float64 array: finite numbers, or +-inf for censored runs."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise TypeError(f"{name} must be a sequence of numbers (one per seed), got {describe(values)}")
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must hold numbers only (one per seed), got {describe(values)}") from None
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, one value per seed, got shape {array.shape}")
    if np.isnan(array).any():
        raise ValueError(f"{name} holds NaN at positions {np.flatnonzero(np.isnan(array)).tolist()}: "
                         "a seed without a result must be left out or entered as the budget it used up")
    return array


def cliffs_delta(a, b, axis: int = -1) -> np.ndarray | float:
    """Cliff's delta of ``a`` over ``b``: P(a > b) - P(a < b) over all pairs.

    ``a`` has shape (..., n_a) and ``b`` (..., n_b), the seeds along ``axis``; leading
    axes are broadcast (``scipy.stats.bootstrap`` passes a batch of resamples there).
    Returns a float for 1-D inputs, an array of the leading shape otherwise. Equals
    ``2 U / (n_a n_b) - 1`` with U the Mann-Whitney statistic of ``a`` (ties count half).

    Source: Cliff (1993), Psychological Bulletin 114(3), 494-509.
    """
    a = np.moveaxis(np.asarray(a, dtype=np.float64), axis, -1)
    b = np.moveaxis(np.asarray(b, dtype=np.float64), axis, -1)
    with np.errstate(invalid="ignore"):  # inf - inf: two runs censored alike, a tie
        signs = np.nan_to_num(np.sign(a[..., :, None] - b[..., None, :]), nan=0.0)
    delta = signs.mean(axis=(-2, -1))
    return float(delta) if delta.ndim == 0 else delta


def _median_difference(a, b, axis: int = -1):
    difference = np.median(a, axis=axis) - np.median(b, axis=axis)
    return float(difference) if np.ndim(difference) == 0 else difference


def _bootstrap_interval(a, b, statistic, confidence: float, n_resamples: int,
                        rng: np.random.Generator) -> tuple[float, float]:
    """The percentile bootstrap interval of ``statistic(a, b)``, each group resampled
    on its own (``scipy.stats.bootstrap``, ``method="percentile"``).

    Percentile rather than SciPy's default BCa: for Cliff's delta of ten seeds a side,
    a bounded statistic with few distinct values, BCa gave intervals that leave out
    the estimate's own neighbourhood (delta 0.68, BCa [0.00, 0.96], percentile
    [0.20, 1.00]), and it is undefined (NaN) when every resample agrees, as when every
    seed of one group beat every seed of the other; the percentile interval is then
    the observed value. Returns (low, high).
    """
    with np.errstate(invalid="ignore"):
        result = _scipy_stats.bootstrap((a, b), statistic, n_resamples=n_resamples, vectorized=True,
                                        confidence_level=confidence, method="percentile", rng=rng)
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


@dataclass(frozen=True)
class Comparison:
    """Group ``a`` against group ``b``, one value per seed in each.

    ``effect`` is Cliff's delta of a over b (see :func:`cliffs_delta`), with the
    bootstrap interval ``effect_low`` .. ``effect_high`` at ``confidence``;
    ``median_difference`` is median(a) - median(b) in the metric's units, with its
    interval ``median_difference_low`` .. ``median_difference_high``
    (NaN when a median is infinite). ``p_value`` is the two-sided Mann-Whitney U test;
    ``p_holm`` its Holm-corrected value within the page's family, None until
    :func:`correct` sets it.
    """

    name: str
    a: tuple[float, ...]
    b: tuple[float, ...]
    effect: float
    effect_low: float
    effect_high: float
    median_difference: float
    median_difference_low: float
    median_difference_high: float
    p_value: float
    confidence: float = 0.95
    p_holm: float | None = None

    @property
    def n(self) -> tuple[int, int]:
        """(seeds in a, seeds in b)."""
        return len(self.a), len(self.b)

    @property
    def probability_of_superiority(self) -> float:
        """(1 + delta) / 2: the chance that a random seed of a beats one of b, ties half."""
        return (1.0 + self.effect) / 2.0

    def effect_text(self, digits: int = 2) -> str:
        """Cliff's delta and its interval for a table, e.g. ``"0.68 [0.20, 1.00]"``."""
        return f"{self.effect:.{digits}f} [{self.effect_low:.{digits}f}, {self.effect_high:.{digits}f}]"


def compare(a: Sequence[float], b: Sequence[float], *, name: str = "", seed: int = 0,
            confidence: float = 0.95, n_resamples: int = 4999) -> Comparison:
    """Compare per-seed values ``a`` and ``b`` (1-D, any lengths >= 2).

    A run censored at its budget (a task never solved) may be entered as the budget or
    as ``inf``; it then ranks as the worst (or best) value. The rank statistics are
    exact for such values; the median difference and its interval are NaN when a
    median itself is infinite. ``seed`` fixes the bootstrap resampling, so a page
    gives the same interval at every build. Raises ValueError for NaN values, a group
    of fewer than 2, or a confidence outside (0, 1).

    Sources: ``scipy.stats.mannwhitneyu`` (two-sided, method "auto": exact without
    ties, normal approximation with tie correction otherwise); ``scipy.stats.bootstrap``
    (percentile interval, Efron and Tibshirani 1993); Cliff (1993).
    """
    a, b = _as_values("a", a), _as_values("b", b)
    for label, group in (("a", a), ("b", b)):
        if group.size < 2:
            raise ValueError(f"{label} must hold at least 2 values (one per seed), got {group.size}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    effect_low, effect_high = _bootstrap_interval(a, b, cliffs_delta, confidence, n_resamples, rng)
    if np.isfinite(a).all() and np.isfinite(b).all():
        median_low, median_high = _bootstrap_interval(a, b, _median_difference, confidence,
                                                      n_resamples, rng)
        median_difference = _median_difference(a, b)
    else:
        median_difference = _median_difference(a, b)
        median_difference = median_difference if math.isfinite(median_difference) else math.nan
        median_low = median_high = math.nan
    if np.unique(np.concatenate([a, b])).size == 1:
        p_value = 1.0  # all values equal: no evidence either way (scipy agrees)
    else:
        p_value = float(_scipy_stats.mannwhitneyu(a, b, alternative="two-sided", method="auto").pvalue)
    return Comparison(name, tuple(a.tolist()), tuple(b.tolist()), cliffs_delta(a, b),
                      effect_low, effect_high, median_difference, median_low, median_high,
                      p_value, confidence)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the order given.

    Sort the m p-values, p_(1) <= ... <= p_(m). Holm (1979) rejects H_(1), ..., H_(k)
    for the largest k with p_(j) <= alpha / (m - j + 1) for every j <= k. The adjusted
    value ``max over j <= i of min(1, (m - j + 1) p_(j))`` says the same thing for every
    alpha at once: H_(i) is rejected at level alpha exactly when its adjusted value is
    <= alpha. The family-wise error rate is at most alpha whatever the dependence
    between the tests.

    ``p_values``: 1-D, each in [0, 1]. Returns a float array of the same length.

    Source: Holm, S. (1979), A simple sequentially rejective multiple test procedure,
    Scandinavian Journal of Statistics 6(2), 65-70.
    """
    p = _as_values("p_values", p_values)
    if p.size == 0:
        return p
    if ((p < 0) | (p > 1)).any():
        raise ValueError(f"p_values must lie in [0, 1], got {p.tolist()}")
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


def correct(comparisons: Sequence[Comparison]) -> list[Comparison]:
    """The comparisons of one family (a page), each with its Holm-corrected ``p_holm``."""
    comparisons = list(comparisons)
    for k, comparison in enumerate(comparisons):
        if not isinstance(comparison, Comparison):
            raise TypeError(f"comparisons[{k}] must be an rnnlab.stats.Comparison, got {describe(comparison)}")
    adjusted = holm([c.p_value for c in comparisons])
    return [dataclasses.replace(c, p_holm=float(p)) for c, p in zip(comparisons, adjusted)]


def verdict(comparison: Comparison | None, expected: str, *, alpha: float = ALPHA) -> str:
    """The verdict on a claim that group ``a`` is ``expected`` ("greater" or "less")
    than group ``b``, from a Holm-corrected comparison.

    - "supported": the corrected p-value is at most ``alpha`` and the confidence
      interval of Cliff's delta lies wholly on the claimed side of 0;
    - "contradicted": the same, on the other side: a clear effect against the claim;
    - "not shown": anything else; the data do not rule out "no difference". This is
      not evidence that the claim is false;
    - "untested": ``comparison`` is None (the experiment was not run).

    Both conditions must hold: the rank test and the interval answer the same question
    in two ways, and a verdict that needed only one of them would be the looser one.
    Raises ValueError if the comparison was not corrected (call :func:`correct` on the
    page's family first) or ``expected`` is not one of the two words.
    """
    if expected not in ("greater", "less"):
        raise ValueError(f'expected must be "greater" or "less", got {expected!r}')
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if comparison is None:
        return "untested"
    if not isinstance(comparison, Comparison):
        raise TypeError(f"comparison must be an rnnlab.stats.Comparison or None, got {describe(comparison)}")
    if comparison.p_holm is None:
        raise ValueError(f"comparison {comparison.name!r} has no Holm-corrected p-value: pass the "
                         "page's whole family of comparisons through rnnlab.stats.correct() first")
    if comparison.p_holm > alpha:
        return "not shown"
    if comparison.effect_low > 0:
        side = "greater"
    elif comparison.effect_high < 0:
        side = "less"
    else:
        return "not shown"
    return "supported" if side == expected else "contradicted"
