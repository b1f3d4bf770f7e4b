"""Non-inferiority verdicts: the paired intervals against published numbers and an independent brute-force
scan, the verdict rule, the sample size against Connor's example and a simulation, Fieller's interval
against a scan of its own test, the block bootstrap's known answers, and verdicts over simulated studies
with known truth."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import special, stats

from quantbench.decisions import (items_to_decide, kld_difference_interval, newcombe_interval, paired_difference,
                                  perplexity_change_interval, relative_difference_of_means, tango_interval, verdict)

Z95 = stats.norm.ppf(0.975)


@pytest.mark.parametrize("table, expected", [
    ((59, 16, 6, 80), (-0.1240, -0.0054)),
    ((0, 0, 3, 0), (-0.1230, 1.0)),
    ((0, 3, 0, 0), (-1.0, 0.1230)),
])
def test_tango_matches_published_values(table, expected):
    """Expected from ocbe-uio/contingencytables, tests/testthat/test-ch8.R (the R code of Fagerland, Lydersen &
    Laake 2017, Statistical Analysis of Contingency Tables, ch. 8): Tango_asymptotic_score_CI_paired_2x2 of
    Cavo et al. 2012, rbind(c(59, 6), c(16, 80)): "estimate = -0.0621 (95% CI -0.1240 to -0.0054)"; of
    matrix(c(0, 0, 3, 0), 2): "1.0000 (95% CI -0.1230 to 1.0000)"; of matrix(c(0, 3, 0, 0), 2): "-1.0000
    (95% CI -1.0000 to 0.1230)". Their difference is (n12 - n21) / N, so n12 is our c and n21 our b."""
    assert tango_interval(*table) == pytest.approx(expected, abs=5e-5)


@pytest.mark.parametrize("table, expected", [
    ((36, 2, 12, 0), (0.0569, 0.3404)),
    ((18, 2, 12, 18), (0.0562, 0.3290)),
    ((53, 0, 0, 1), (-0.0729, 0.0729)),
    ((0, 0, 30, 0), (0.8395, 1.0)),
    ((59, 16, 6, 80), (-0.1186, -0.0046)),
])
def test_newcombe_matches_published_values(table, expected):
    """Newcombe 1998 (Stat Med 17:2635-2650), method 10, examples as quoted in m-Py/propint,
    tests/testthat/test_Two_Dependent_Props_CI.R ("ci.two.dep.props produces the results reported in
    Newcombe1998"): (e, f, g, h) = (36, 12, 2, 0) -> 0.0569 to 0.3404; (18, 12, 2, 18) -> 0.0562 to 0.3290;
    (53, 0, 0, 1) -> -0.0729 to 0.0729; (0, 30, 0, 0) -> 0.8395 to 1.0, where the difference is (f - g) / n,
    so f is our c and g our b. Cavo et al. 2012 from ocbe-uio/contingencytables, tests/testthat/test-ch8.R:
    Newcombe_square_and_add_CI_paired_2x2 "-0.0621 (95% CI -0.1186 to -0.0046)"."""
    assert newcombe_interval(*table) == pytest.approx(expected, abs=5e-5)


def brute_force_tango(b: int, c: int, n: int, step: float = 5e-4) -> tuple[float, float]:
    """The differences on a grid whose score statistic stays within +-z, the nuisance loss probability
    maximised over a grid of its own rather than by Tango's closed-form root."""
    deltas = np.arange(-1 + step, 1 - step / 2, step)
    low_p, high_p = np.maximum(0, -deltas), (1 - deltas) / 2
    p = low_p[:, None] + (high_p - low_p)[:, None] * np.linspace(0, 1, 2001)
    d = deltas[:, None]
    log_likelihood = special.xlogy(c, p + d) + special.xlogy(b, p) + special.xlogy(n - b - c, 1 - 2 * p - d)
    loss = p[np.arange(len(deltas)), log_likelihood.argmax(axis=1)]
    variance = n * (2 * loss + deltas * (1 - deltas))
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(c - b - n * deltas == 0, 0.0, (c - b - n * deltas) / np.sqrt(variance))
    kept = deltas[np.abs(score) <= Z95]
    return (-1.0 if kept[0] == deltas[0] else kept[0]), (1.0 if kept[-1] == deltas[-1] else kept[-1])


@pytest.mark.parametrize("table", [(59, 16, 6, 80), (10, 0, 0, 5), (1, 1, 7, 12), (0, 2, 0, 1), (40, 9, 3, 2)])
def test_tango_agrees_with_a_brute_force_scan(table):
    """An independent route to the same interval: scan the differences, maximise the likelihood numerically."""
    a, b, c, d = table
    assert tango_interval(*table) == pytest.approx(brute_force_tango(b, c, a + b + c + d), abs=1e-3)


def test_no_discordant_items_give_the_closed_form():
    """b = c = 0: the restricted loss probability is max(0, -delta), so the score's root is z^2 / (n + z^2)."""
    for n in (1, 15, 300):
        half = Z95**2 / (n + Z95**2)
        assert tango_interval(n, 0, 0, 0) == pytest.approx((-half, half), abs=1e-9)
        assert tango_interval(0, 0, 0, n) == pytest.approx((-half, half), abs=1e-9)


def test_every_small_table_gives_an_interval_within_bounds_around_its_estimate():
    for n in range(1, 7):
        for a, b, c in itertools.product(range(n + 1), repeat=3):
            if a + b + c > n:
                continue
            table = (a, b, c, n - a - b - c)
            estimate = paired_difference(*table)
            for interval in (tango_interval, newcombe_interval):
                low, high = interval(*table)
                assert -1 <= low <= estimate + 1e-12 and estimate - 1e-12 <= high <= 1, (interval, table)


def test_counts_are_checked():
    for table in [(0, 0, 0, 0), (1, -1, 0, 0)]:
        with pytest.raises(ValueError):
            tango_interval(*table)
    with pytest.raises(ValueError):
        newcombe_interval(5, 1, 1, 5, confidence=1.0)


@pytest.mark.parametrize("low, high, higher_is_better, expected", [
    (-0.01, 0.02, True, "non-inferior"),
    (-0.04, 0.02, True, "inconclusive"),
    (-0.03, 0.02, True, "inconclusive"),    # touching -m is not clear of it
    (-0.09, -0.03, True, "inconclusive"),
    (-0.09, -0.031, True, "inferior"),
    (-0.02, 0.029, False, "non-inferior"),  # e.g. perplexity at most 3 % above the baseline's
    (0.01, 0.05, False, "inconclusive"),
    (0.031, 0.05, False, "inferior"),
    (math.nan, math.nan, True, "inconclusive"),
])
def test_verdict_rule(low, high, higher_is_better, expected):
    assert verdict(low, high, margin=0.03, higher_is_better=higher_is_better) == expected


def test_verdict_refuses_a_negative_margin_or_a_reversed_interval():
    with pytest.raises(ValueError):
        verdict(-0.01, 0.01, margin=-0.02)
    with pytest.raises(ValueError):
        verdict(0.01, -0.01, margin=0.02)


def test_items_to_decide_at_margin_zero_is_connors_example():
    """At m = 0 Nam's formula is Connor's (1987, Biometrics 43:207-211) McNemar sample size. The example of
    powerandsamplesize.com (HyLown), "Compare Paired Proportions: McNemar's Z-test", after Connor p. 209:
    p10 = 0.05, p01 = 0.45, two-sided alpha 0.05, power 0.80 -> ceiling(n) = 23 (the 2-sided page, also
    zarathucorp.github.io/open-powersamplesize .../mcnemar-2-sided); one-sided alpha 0.05, power 0.90 -> 23
    (the 1-sided page). Here 5 losses and 45 gains in 100 items."""
    assert items_to_decide(25, 5, 45, 25, margin=0.0) == 23
    assert items_to_decide(25, 5, 45, 25, margin=0.0, power=0.9, alpha=0.05) == 23


def test_no_number_of_items_rescues_a_variant_already_below_the_margin():
    assert items_to_decide(100, 30, 10, 60, margin=0.05) is None  # difference -0.1
    assert items_to_decide(100, 15, 5, 80, margin=0.05) is None   # exactly -m


def test_items_to_decide_gives_the_promised_power():
    """A pilot of 300 items with 5 % gains and 5 % losses is inconclusive at m = 0.03; at the number of items
    the formula asks for, simulated studies with those cell probabilities say non-inferior (Tango's interval)
    about 80 % of the time (400 studies: binomial sd 2 %)."""
    assert verdict(*tango_interval(135, 15, 15, 135), margin=0.03) == "inconclusive"
    n = items_to_decide(135, 15, 15, 135, margin=0.03)
    assert 850 < n < 1000
    tables = np.random.default_rng(7).multinomial(n, [0.45, 0.05, 0.05, 0.45], size=400)
    power = np.mean([verdict(*tango_interval(*t), margin=0.03) == "non-inferior" for t in tables])
    assert 0.74 <= power <= 0.86


def test_fieller_interval_is_where_its_ratio_t_test_does_not_reject():
    """An independent scan: every ratio r whose Welch-type statistic |mean_v - r mean_b| / se(r) stays within
    the t quantile (at the degrees of freedom of the estimated ratio) lies in the interval, and no other."""
    rng = np.random.default_rng(3)
    baseline, variant = rng.normal(100, 2, 5), rng.normal(96, 4, 7)
    low, high = relative_difference_of_means(baseline, variant)
    error_b, error_v = baseline.var(ddof=1) / 5, variant.var(ddof=1) / 7
    ratio = variant.mean() / baseline.mean()
    freedom = (error_v + ratio**2 * error_b) ** 2 / (error_v**2 / 6 + ratio**4 * error_b**2 / 4)
    grid = np.arange(0.8, 1.2, 1e-6)
    statistic = np.abs(variant.mean() - grid * baseline.mean()) / np.sqrt(error_v + grid**2 * error_b)
    kept = grid[statistic <= stats.t.ppf(0.975, freedom)]
    assert (low, high) == pytest.approx((kept[0] - 1, kept[-1] - 1), abs=2e-6)


def test_fieller_interval_covers_the_true_ratio():
    """1000 pairs of 5 repetitions, CVs 3 % and 6 %: about 95 % of intervals hold the true -5 % (sd 0.7 %)."""
    rng = np.random.default_rng(11)
    covered = [low < -0.05 < high for low, high in (
        relative_difference_of_means(rng.normal(100, 3, 5), rng.normal(95, 5.7, 5)) for _ in range(1000))]
    assert 0.93 <= np.mean(covered) <= 0.97


def test_fieller_interval_edge_cases():
    assert relative_difference_of_means([2.0, 2.0], [3.0, 3.0]) == pytest.approx((0.5, 0.5))
    assert relative_difference_of_means([-1.0, 1.0, 0.5], [1.0, 1.1, 0.9]) == (-math.inf, math.inf)
    assert verdict(-math.inf, math.inf, margin=0.05) == "inconclusive"
    speed = relative_difference_of_means([100.2, 99.1, 100.7, 99.8], [97.9, 98.4, 97.2, 98.8])
    assert verdict(*speed, margin=0.05) == "non-inferior"
    with pytest.raises(ValueError):
        relative_difference_of_means([1.0], [1.0, 2.0])


def test_bootstrap_is_seeded():
    rng = np.random.default_rng(5)
    baseline, variant = rng.normal(3, 0.3, 200), rng.normal(3.02, 0.3, 200)
    first = perplexity_change_interval(baseline, variant, seed=1)
    assert perplexity_change_interval(baseline, variant, seed=1) == first
    assert perplexity_change_interval(baseline, variant, seed=2) != first


def test_a_constant_nll_shift_is_a_known_perplexity_change():
    baseline = np.random.default_rng(5).normal(3, 0.3, 100)
    assert perplexity_change_interval(baseline, baseline + 0.02) == pytest.approx((math.expm1(0.02),) * 2)
    assert kld_difference_interval(baseline, baseline) == (0.0, 0.0)


def test_bootstrap_of_independent_windows_matches_the_normal_interval():
    difference = np.random.default_rng(6).normal(0.01, 0.05, 400)
    expected = difference.mean() + np.array([-Z95, Z95]) * difference.std(ddof=1) / 20
    assert kld_difference_interval(np.zeros(400), difference, block=1) == pytest.approx(expected, abs=6e-4)


def test_blocks_widen_the_interval_of_correlated_windows():
    """AR(1) windows with coefficient 0.8: single-window resampling understates the spread (the true variance
    of the mean is (1 + 0.8) / (1 - 0.8) = 9 times the independent one); blocks of n^(1/3) recover much of it."""
    rng = np.random.default_rng(8)
    series = np.zeros(600)
    for i in range(1, 600):
        series[i] = 0.8 * series[i - 1] + rng.normal(0, 0.1)
    low, high = kld_difference_interval(np.zeros(600), series)
    single_low, single_high = kld_difference_interval(np.zeros(600), series, block=1)
    assert high - low > 1.6 * (single_high - single_low)


def test_token_weights_make_the_token_level_mean():
    """Short windows differing by 1 nat, long ones by 0: the token-level mean difference is 0.01, the mean of
    window means 0.5; the interval is about the first."""
    difference = np.tile([1.0, 0.0], 100)
    tokens = np.tile([1, 99], 100)
    low, high = kld_difference_interval(np.zeros(200), difference, tokens=tokens)
    assert low <= 0.01 <= high < 0.05


def simulated_verdicts(cells: list[float], interval, repetitions: int, items: int, margin: float, seed: int):
    """Verdict counts of `repetitions` studies of `items` paired items drawn with cell probabilities (a, b, c, d)."""
    tables = np.random.default_rng(seed).multinomial(items, cells, size=repetitions)
    verdicts = [verdict(*interval(*table), margin=margin) for table in tables]
    return {kind: verdicts.count(kind) / repetitions for kind in ("non-inferior", "inferior", "inconclusive")}


@pytest.mark.parametrize("interval", [tango_interval, newcombe_interval])
def test_verdicts_of_simulated_studies_with_known_truth(interval):
    """1000 items, baseline accuracy 0.60, margin m = 0.05, 200 studies each (seeded).

    Equal variant (5 % gains, 5 % losses: discordance 10 %): right means "non-inferior", and never
    "inferior"; required in >= 95 % of studies (expected power: the standard error is 0.010, m is 5 of them,
    so P(low > -m) ~ 0.999). Worse by 2m (2 % gains, 12 % losses): right means "inferior"; >= 95 % required
    (se 0.0114, P(high < -m) ~ 0.99), and "non-inferior", the harmful error, at most 2.5 %. At the margin
    (difference exactly -m, 400 studies): "non-inferior" is the test's type I error, nominally 2.5 %;
    at most 5 % allowed for simulation noise (sd 0.8 %).
    """
    equal = simulated_verdicts([0.55, 0.05, 0.05, 0.35], interval, 200, 1000, 0.05, seed=21)
    assert equal["non-inferior"] >= 0.95 and equal["inferior"] == 0
    worse = simulated_verdicts([0.48, 0.12, 0.02, 0.38], interval, 200, 1000, 0.05, seed=22)
    assert worse["inferior"] >= 0.95 and worse["non-inferior"] <= 0.025
    boundary = simulated_verdicts([0.515, 0.085, 0.035, 0.365], interval, 400, 1000, 0.05, seed=23)
    assert boundary["non-inferior"] <= 0.05
