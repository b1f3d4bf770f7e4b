"""Non-inferiority verdicts of a quantized variant against its baseline, from intervals rather than point
estimates: a variant a point worse on 300 items may be noise, and a report should say which.

Accuracy (the same items scored by both): the 2x2 counts a (both right), b (baseline right, variant
wrong), c (baseline wrong, variant right), d (both wrong); the difference is p_variant - p_baseline =
(c - b) / n. Tango's score interval and Newcombe's hybrid score interval both stay in [-1, 1] and behave
with empty off-diagonal cells, where the Wald interval of McNemar's setting does not.

Speed and energy per token (repetitions): Fieller's interval of variant mean / baseline mean - 1.
Perplexity and KLD (the same text windows scored by both): a circular block bootstrap over windows.

The verdict rule is one for all: an interval on the scale the margin is declared on (see `verdict`).
A two-sided 95 % interval makes its "non-inferior" a one-sided test at alpha = 0.025.
"""

from __future__ import annotations

import math
from typing import Literal, Sequence

import numpy as np
from scipy import optimize, stats

Verdict = Literal["non-inferior", "inferior", "inconclusive"]
Interval = tuple[float, float]


def _check_counts(a: int, b: int, c: int, d: int) -> int:
    if min(a, b, c, d) < 0 or a + b + c + d == 0:
        raise ValueError(f"paired counts must be non-negative with at least one item, got {(a, b, c, d)}")
    return a + b + c + d


def _normal_quantile(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    return float(stats.norm.ppf(0.5 + confidence / 2))


def paired_difference(a: int, b: int, c: int, d: int) -> float:
    """p_variant - p_baseline: only the discordant items (b lost, c gained) move it."""
    return (c - b) / _check_counts(a, b, c, d)


def _restricted_loss_probability(losses: float, gains: float, n: float, delta: float) -> float:
    """Maximum-likelihood P(baseline right, variant wrong) given p_gain - p_loss = delta (Tango 1998,
    with x12 = gains and x21 = losses): the positive root of 2n p^2 + B p + C = 0. Counts may be proportions
    with n = 1, as the sample-size formula uses them."""
    quadratic = 2 * n
    linear = -(gains + losses) + (2 * n - gains + losses) * delta
    constant = -losses * delta * (1 - delta)
    return (math.sqrt(max(linear**2 - 4 * quadratic * constant, 0.0)) - linear) / (2 * quadratic)


def _tango_score(losses: int, gains: int, n: int, delta: float) -> float:
    """Tango's score statistic for H0: difference = delta; decreasing in delta, 0 at the observed one."""
    excess = gains - losses - n * delta
    if excess == 0:
        return 0.0  # also where the variance is 0 (b = c = 0 at delta = 0)
    variance = n * (2 * _restricted_loss_probability(losses, gains, n, delta) + delta * (1 - delta))
    return excess / math.sqrt(variance) if variance > 0 else math.copysign(math.inf, excess)


def tango_interval(a: int, b: int, c: int, d: int, confidence: float = 0.95) -> Interval:
    """Tango's (1998, Stat Med 17:891-908) score interval of p_variant - p_baseline: the differences its
    score test does not reject (what R's PropCIs::scoreci.mp computes). Good coverage down to small n, defined with
    b = c = 0; a bound at +-1 exactly where every item is a gain (or a loss)."""
    n = _check_counts(a, b, c, d)
    z = _normal_quantile(confidence)
    observed = (c - b) / n

    def bound(toward: float, critical: float) -> float:
        """The root of score = critical between the observed difference and +-1, or +-1 itself if none."""
        def excess(delta: float) -> float:
            return _tango_score(b, c, n, delta) - critical

        inside = toward - math.copysign(1e-12, toward)  # +-1 themselves make the variance 0/0
        if observed == toward or (excess(inside) > 0) == (excess(observed) > 0):
            return toward
        return optimize.brentq(excess, inside, observed, xtol=1e-12)

    return bound(-1.0, z), bound(1.0, -z)


def _wilson_interval(successes: int, n: int, z: float) -> Interval:
    centre = (successes + z * z / 2) / (n + z * z)
    half = z * math.sqrt(successes * (n - successes) / n + z * z / 4) / (n + z * z)
    return centre - half, centre + half


def _newcombe_correlation(a: int, b: int, c: int, d: int) -> float:
    """Newcombe's (1998) continuity-corrected phi between the two marginal proportions; 0 for an empty margin."""
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    if margins == 0:
        return 0.0
    cross = a * d - b * c
    corrected = cross - (a + b + c + d) / 2 if cross > (a + b + c + d) / 2 else min(cross, 0)
    return corrected / math.sqrt(margins)


def newcombe_interval(a: int, b: int, c: int, d: int, confidence: float = 0.95) -> Interval:
    """Newcombe's hybrid score interval for paired data (1998, Stat Med 17:2635-2650, method 10): the Wilson
    intervals of both accuracies, squared and added with their correlation. Closed form, so a second opinion
    on Tango's interval at no cost; clipped to [-1, 1] against rounding."""
    n = _check_counts(a, b, c, d)
    z = _normal_quantile(confidence)
    variant, baseline = (a + c) / n, (a + b) / n
    variant_low, variant_high = _wilson_interval(a + c, n, z)
    baseline_low, baseline_high = _wilson_interval(a + b, n, z)
    phi = _newcombe_correlation(a, b, c, d)

    def spread(first: float, second: float) -> float:
        return math.sqrt(max(first**2 - 2 * phi * first * second + second**2, 0.0))

    difference = variant - baseline
    low = difference - spread(variant - variant_low, baseline_high - baseline)
    high = difference + spread(baseline - baseline_low, variant_high - variant)
    return max(low, -1.0), min(high, 1.0)


def verdict(low: float, high: float, margin: float, higher_is_better: bool = True) -> Verdict:
    """Where an interval of variant-against-baseline lies relative to the margin m (>= 0; 0 asks for
    superiority).

    The interval and m share one scale: an absolute difference (accuracy, mean KLD) or a relative one,
    variant / baseline - 1 (speed, perplexity, energy per token). Higher is better: "non-inferior" when
    low > -m, "inferior" when high < -m. Lower is better (perplexity, KLD, energy): "non-inferior" when
    high < m (e.g. perplexity at most m * 100 % above the baseline's), "inferior" when low > m. Otherwise,
    NaN bounds included, "inconclusive": more items or repetitions could still decide it.
    """
    if margin < 0 or low > high:
        raise ValueError(f"need margin >= 0 and low <= high, got margin {margin}, interval ({low}, {high})")
    if not higher_is_better:
        low, high = -high, -low
    if low > -margin:
        return "non-inferior"
    if high < -margin:
        return "inferior"
    return "inconclusive"


def items_to_decide(a: int, b: int, c: int, d: int, margin: float, power: float = 0.8,
                    alpha: float = 0.025) -> int | None:
    """Items (in all, not more) for which the non-inferiority score test at one-sided `alpha` reaches `power`
    if the discordance psi = (b + c) / n and the difference delta = (c - b) / n stay as observed.

    Nam's (1997, Biometrics 53:1422-1430) sample size for the paired score test (Tango's statistic):
    n = (z_alpha sigma_0 + z_power sigma_1)^2 / (delta + m)^2 with sigma_1^2 = psi - delta^2 and sigma_0^2 =
    2 p~ - m (1 + m), p~ the restricted loss probability at difference -m; at m = 0 it is Connor's (1987)
    McNemar formula. None when delta <= -m: more items would only make "inferior" surer.
    """
    n = _check_counts(a, b, c, d)
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    delta, psi = (c - b) / n, (b + c) / n
    if delta <= -margin:
        return None
    null_variance = 2 * _restricted_loss_probability(b / n, c / n, 1.0, -margin) - margin * (1 + margin)
    spread = (stats.norm.ppf(1 - alpha) * math.sqrt(max(null_variance, 0.0))
              + stats.norm.ppf(power) * math.sqrt(max(psi - delta**2, 0.0)))
    return math.ceil((spread / (delta + margin)) ** 2)


def relative_difference_of_means(baseline: Sequence[float], variant: Sequence[float],
                                 confidence: float = 0.95) -> Interval:
    """Fieller's interval of mean(variant) / mean(baseline) - 1 from independent repetitions (tokens/s,
    joules per token), unequal variances with Welch-Satterthwaite degrees of freedom at the estimated ratio
    (Tamhane & Logan 2004, as mratios::ttestratio). Exact for normal means where the delta method on a ratio
    is not, and honest when the baseline's mean is not clear of zero: then (-inf, inf), "inconclusive"."""
    baseline, variant = np.asarray(baseline, float), np.asarray(variant, float)
    if len(baseline) < 2 or len(variant) < 2:
        raise ValueError("need at least two repetitions of each")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    mean_b, mean_v = baseline.mean(), variant.mean()
    error_b = baseline.var(ddof=1) / len(baseline)  # squared standard errors of the means
    error_v = variant.var(ddof=1) / len(variant)
    ratio = mean_v / mean_b
    if error_v + ratio**2 * error_b == 0:
        return ratio - 1, ratio - 1
    freedom = (error_v + ratio**2 * error_b) ** 2 / (
        error_v**2 / (len(variant) - 1) + ratio**4 * error_b**2 / (len(baseline) - 1))
    t = stats.t.ppf(0.5 + confidence / 2, freedom)
    # (mean_v - r mean_b)^2 = t^2 (error_v + r^2 error_b), a quadratic in r opening downward unless mean_b is
    # clear of zero
    quadratic = mean_b**2 - t**2 * error_b
    if quadratic <= 0:
        return -math.inf, math.inf
    half = math.sqrt(t**2 * (error_v * mean_b**2 + error_b * mean_v**2 - t**2 * error_v * error_b))
    return (mean_v * mean_b - half) / quadratic - 1, (mean_v * mean_b + half) / quadratic - 1


def _block_sums(values: np.ndarray, block: int) -> np.ndarray:
    """Sum of each run of `block` consecutive windows starting at every window, wrapping past the end."""
    wrapped = np.concatenate([values, values[:block - 1]])
    cumulative = np.concatenate([[0.0], np.cumsum(wrapped)])
    return cumulative[block:] - cumulative[:-block]


def _bootstrap_mean_difference(baseline: Sequence[float], variant: Sequence[float],
                               tokens: Sequence[float] | None, confidence: float, block: int | None,
                               resamples: int, seed: int) -> Interval:
    """Percentile interval of the token-weighted mean of variant - baseline by the circular block bootstrap
    (Politis & Romano 1992): neighbouring windows share text, so their values are correlated and resampling
    single windows would understate the spread. Both arrays are resampled at the same windows (paired).
    Blocks of n^(1/3) windows by default (Hall, Horowitz & Jing 1995); ceil(n / block) blocks a resample."""
    difference = np.asarray(variant, float) - np.asarray(baseline, float)
    weights = np.ones_like(difference) if tokens is None else np.asarray(tokens, float)
    if difference.ndim != 1 or len(difference) == 0 or weights.shape != difference.shape:
        raise ValueError("need aligned, non-empty one-dimensional per-window arrays")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    n = len(difference)
    block = min(block or max(1, round(n ** (1 / 3))), n)
    starts = np.random.default_rng(seed).integers(0, n, size=(resamples, -(-n // block)))
    weighted = _block_sums(weights * difference, block)[starts].sum(axis=1)
    means = weighted / _block_sums(weights, block)[starts].sum(axis=1)
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


def kld_difference_interval(baseline: Sequence[float], variant: Sequence[float],
                            tokens: Sequence[float] | None = None, confidence: float = 0.95,
                            block: int | None = None, resamples: int = 2000, seed: int = 0) -> Interval:
    """Interval of mean KLD (variant) - mean KLD (baseline), in nats, from per-window mean KLDs over the same
    windows (`tokens`: tokens scored per window, the weights that make it the token-level mean). Seeded:
    the same inputs give the same interval."""
    return _bootstrap_mean_difference(baseline, variant, tokens, confidence, block, resamples, seed)


def perplexity_change_interval(baseline_nll: Sequence[float], variant_nll: Sequence[float],
                               tokens: Sequence[float] | None = None, confidence: float = 0.95,
                               block: int | None = None, resamples: int = 2000, seed: int = 0) -> Interval:
    """Interval of perplexity (variant) / perplexity (baseline) - 1 = exp(mean NLL difference) - 1, from
    per-window mean NLLs (nats per token) over the same windows; `tokens` as in `kld_difference_interval`.
    exp is monotone, so the bootstrap's percentile interval carries over exactly."""
    low, high = _bootstrap_mean_difference(baseline_nll, variant_nll, tokens, confidence, block, resamples, seed)
    return math.expm1(low), math.expm1(high)
