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

from ._checks import check_int, describe

__all__ = ["Comparison", "cliffs_delta", "compare", "compare_to_reference", "holm", "correct",
           "verdict", "spread", "plot_seeds", "VERDICTS", "ALPHA"]

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
        with np.errstate(invalid="ignore"):  # inf - inf: both medians censored
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


def compare_to_reference(values: Sequence[float], reference: float, *, name: str = "", seed: int = 0,
                         confidence: float = 0.95, n_resamples: int = 4999) -> Comparison:
    """Compare per-seed ``values`` with a fixed ``reference`` value (one group, not two).

    The effect is Cliff's delta against a point, ``P(x > reference) - P(x < reference)``
    (the sign statistic), with its percentile bootstrap interval; the median difference
    is ``median(values) - reference``; the p-value is the two-sided Wilcoxon signed-rank
    test of ``values - reference`` (``scipy.stats.wilcoxon``), 1 when every value equals
    the reference. The returned :class:`Comparison` has ``b = (reference,)``; correct
    and judge it with the page's other comparisons. Values must be finite.

    Sources: Wilcoxon, F. (1945), Individual comparisons by ranking methods, Biometrics
    Bulletin 1(6); ``scipy.stats.wilcoxon``; ``scipy.stats.bootstrap``.
    """
    values = _as_values("values", values)
    if values.size < 2:
        raise ValueError(f"values must hold at least 2 values (one per seed), got {values.size}")
    if not np.isfinite(values).all():
        raise ValueError(f"values must be finite to compare them with a reference, got {values.tolist()}")
    if isinstance(reference, bool) or not isinstance(reference, (int, float, np.integer, np.floating)) \
            or not math.isfinite(reference):
        raise TypeError(f"reference must be a finite number, got {describe(reference)}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    reference = float(reference)
    rng = np.random.default_rng(seed)

    def sign_effect(x, axis=-1):
        return np.sign(x - reference).mean(axis=axis)

    def median_shift(x, axis=-1):
        return np.median(x, axis=axis) - reference

    intervals = []
    for statistic in (sign_effect, median_shift):
        result = _scipy_stats.bootstrap((values,), statistic, n_resamples=n_resamples, vectorized=True,
                                        confidence_level=confidence, method="percentile", rng=rng)
        intervals.append((float(result.confidence_interval.low), float(result.confidence_interval.high)))
    differences = values - reference
    if not differences.any():
        p_value = 1.0
    else:
        p_value = float(_scipy_stats.wilcoxon(differences, alternative="two-sided").pvalue)
    return Comparison(name, tuple(values.tolist()), (reference,), float(sign_effect(values)),
                      *intervals[0], float(median_shift(values)), *intervals[1], p_value, confidence)


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


def spread(values: Sequence[float], digits: int = 3) -> str:
    """The per-seed results ``values`` as text, ``"median [smallest, largest]"``, each
    with ``digits`` decimals (``spread([0.2, 0.1, 0.4], 2) == "0.20 [0.10, 0.40]"``).
    Raises ``TypeError`` for values that are not numbers, ``ValueError`` for none or NaN."""
    values = _as_values("values", values)
    if values.size == 0:
        raise ValueError("values must hold at least one number (one per seed), got none")
    digits = check_int("digits", digits, 0)
    low, middle, high = values.min(), np.median(values), values.max()
    return f"{middle:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def plot_seeds(ax, groups: dict, *, ylabel: str, integer: bool = False, log: bool = False,
               censored: str = "not reached within the budget", point: str = "one seed",
               legend: str = "right"):
    """Draw every seed of each group as a point, with the group's median and interquartile
    range, on a matplotlib ``ax``; return the legend, which sits outside the axes.

    ``groups`` maps a label (shown under its column) to its per-seed values, where
    ``inf`` (or ``-inf``) marks a run censored at its budget, drawn as an open triangle
    above (below) the measured points, or to ``None`` for a configuration that was not
    run, shown as the words "not run" and no point, never as a measured value.
    ``integer`` puts ticks on whole numbers only (counts, steps); ``log`` uses a
    logarithmic y axis; ``point`` names what one point is in the legend; ``legend``
    puts the legend to the ``"right"`` of the axes or ``"below"`` them, outside the data
    either way. The points of a column are spread sideways evenly (no random jitter), so
    a figure is the same at every build.
    """
    if legend not in ("right", "below"):
        raise ValueError(f'legend must be "right" or "below", got {legend!r}')
    import matplotlib.ticker as ticker  # matplotlib is needed only to draw

    if not isinstance(groups, dict) or not groups:
        raise TypeError(f"groups must be a non-empty dict label -> values or None, got {describe(groups)}")
    finite = [v for values in groups.values() if values is not None
              for v in _as_values("groups values", values) if np.isfinite(v)]
    if not finite:
        raise ValueError("groups hold no finite value to place on the y axis")
    low, high = min(finite), max(finite)
    if log:
        if low <= 0:
            raise ValueError(f"log=True needs positive values, got a minimum of {low}")
        span = np.log10(high / low) or 1.0
        top, bottom = high * 10 ** (0.12 * span), low / 10 ** (0.12 * span)
        ax.set_yscale("log")
    else:
        span = (high - low) or 1.0
        top, bottom = high + 0.12 * span, low - 0.12 * span
    colour = {"point": "C0", "summary": "k", "censored": "C3"}
    any_censored = False
    for x, (label, values) in enumerate(groups.items()):
        if values is None:
            ax.text(x, (top * bottom) ** 0.5 if log else (top + bottom) / 2, "not run", rotation=90,
                    ha="center", va="center", color="0.45", fontsize=9)
            continue
        values = _as_values(f"groups[{label!r}]", values)
        offsets = np.linspace(-0.18, 0.18, len(values)) if len(values) > 1 else np.zeros(1)
        shown = np.where(np.isposinf(values), top, np.where(np.isneginf(values), bottom, values))
        measured = np.isfinite(values)
        ax.scatter(x + offsets[measured], shown[measured], s=18, color=colour["point"], alpha=0.75,
                   zorder=3, label=point)
        if (~measured).any():
            any_censored = True
            ax.scatter(x + offsets[~measured], shown[~measured], s=26, marker="^", facecolors="none",
                       edgecolors=colour["censored"], zorder=3, label=censored)
        q1, median, q3 = np.percentile(values, [25, 50, 75]) if measured.all() else (
            np.percentile(np.where(measured, values, np.sign(values) * np.finfo(float).max), [25, 50, 75]))
        q1, median, q3 = (min(max(q, bottom), top) for q in (q1, median, q3))
        ax.plot([x, x], [q1, q3], color=colour["summary"], lw=5, alpha=0.25, solid_capstyle="butt",
                zorder=2, label="interquartile range")
        ax.plot([x - 0.28, x + 0.28], [median, median], color=colour["summary"], lw=2, zorder=4,
                label="median")
    ax.set_xticks(range(len(groups)), [str(label) for label in groups])
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.set_ylim(bottom / 10 ** (0.05 * span) if log else bottom - 0.05 * span,
                top * 10 ** (0.05 * span) if log else top + 0.05 * span)
    ax.set_ylabel(ylabel)
    if integer:
        ax.yaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    order = [point, "median", "interquartile range"] + ([censored] if any_censored else [])
    names = [name for name in order if name in unique]
    place = (dict(loc="upper left", bbox_to_anchor=(1.02, 1.0)) if legend == "right" else
             dict(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2))
    return ax.legend([unique[name] for name in names], names, borderaxespad=0.0, fontsize=8,
                     frameon=False, **place)
