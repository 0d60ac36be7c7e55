"""The curation stage and real-data supply: exact keeps on hand-made inputs, closed forms, rates, invariances."""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from conftest import assert_resumed

from collapse_jax.core import curation, engine, supply
from collapse_jax.core.regimes import Regime
from collapse_jax.host import runner


def with_blocks(config, curation_fields=None, regime_fields=None, **overrides):
    """A copy of `config` with a curation block and extra regime fields (the shipped Gaussian config has neither)."""
    config = runner.as_config(overrides, config)
    if curation_fields is not None:
        config.curation = ml_collections.ConfigDict(curation_fields)
    with config.regime.ignore_type():
        for name, value in (regime_fields or {}).items():
            config.regime[name] = value
    return config


class _FakeModel:
    """Scores and goodness are the sample values themselves, so the expected keeps are known exactly."""

    def log_likelihood(self, params, data, knobs):
        return data[:, 0]

    def is_good(self, data, knobs):
        return data[:, 0] > 0


def test_quantile_band_keeps_exactly_the_ranks_floor_low_n_to_floor_high_n():
    scores = jnp.asarray([5.0, -1.0, 3.0, 0.0, 9.0, 2.0, 7.0, 1.0, 4.0, 8.0])  # ranks 5 0 4 1 9 3 7 2 6 8
    drop_least_likely = curation.in_quantile_band(scores, 0.1, 1.0)
    np.testing.assert_array_equal(drop_least_likely, scores != -1.0)
    drop_most_likely = curation.in_quantile_band(scores, 0.0, 0.8)
    np.testing.assert_array_equal(drop_most_likely, scores < 8.0)
    middle = curation.in_quantile_band(scores, 0.25, 0.75)  # ranks 2..6 (floor 2.5 = 2, floor 7.5 = 7): scores 1..5
    np.testing.assert_array_equal(middle, (scores >= 1.0) & (scores <= 5.0))


def test_likelihood_filter_selects_the_band_of_the_generating_models_scores():
    stage = curation.Curation(name="likelihood_filter")
    samples = jnp.arange(20.0)[::-1, None]  # scores 19..0
    state = {"samples": samples, "params": None}
    knobs = {"keep_quantile_low": jnp.float32(0.1), "keep_quantile_high": jnp.float32(0.9)}
    _, keep, metrics = stage.select(jax.random.key(0), _FakeModel(), state, None, knobs)
    np.testing.assert_array_equal(keep, ((samples[:, 0] >= 2) & (samples[:, 0] < 18)).astype(np.float32))
    assert float(metrics["curation_kept_fraction"]) == pytest.approx(0.8)


def test_verifier_keeps_good_with_phi_and_bad_with_psi():
    stage = curation.Curation(name="verifier")
    n = 200_000
    samples = jnp.where(jnp.arange(n) % 4 == 0, 1.0, -1.0)[:, None]  # a quarter good
    knobs = {"keep_good": jnp.float32(0.9), "keep_bad": jnp.float32(0.2)}
    _, keep, metrics = stage.select(jax.random.key(1), _FakeModel(), {"samples": samples}, None, knobs)
    keep = np.asarray(keep)
    assert float(metrics["bad_share_candidates"]) == 0.75
    kept_bad = ((keep > 0) & (np.asarray(samples[:, 0]) < 0)).sum() / (keep > 0).sum()
    assert float(metrics["bad_share_kept"]) == pytest.approx(kept_bad, rel=1e-6)
    good = np.asarray(samples[:, 0] > 0)
    # Binomial rates: SE = sqrt(p (1 - p) / n) <= 0.0023 for the 50,000 good points; 5 SE bounds.
    assert keep[good].mean() == pytest.approx(0.9, abs=5 * math.sqrt(0.09 / good.sum()))
    assert keep[~good].mean() == pytest.approx(0.2, abs=5 * math.sqrt(0.16 / (~good).sum()))
    # phi = 1, psi = 0 is an exact oracle filter.
    exact = {"keep_good": jnp.float32(1.0), "keep_bad": jnp.float32(0.0)}
    _, keep, _ = stage.select(jax.random.key(2), _FakeModel(), {"samples": samples}, None, exact)
    np.testing.assert_array_equal(np.asarray(keep, bool), good)


def test_abstract_detector_drops_synthetic_at_tpr_and_real_at_fpr_and_spares_the_preserved_reserve():
    stage = curation.Curation(name="watermark_filter")
    n = 100_000
    samples = jnp.zeros((n, 1))
    real_points = jnp.zeros((2 * n, 1))
    real_weights = jnp.concatenate([jnp.ones(n), jnp.ones(n)])
    detectable = jnp.arange(2 * n) >= n  # the first half is a preserved reserve
    knobs = {"true_positive_rate": jnp.float32(0.7), "false_positive_rate": jnp.float32(0.1)}
    real_part = (real_points, real_weights, detectable)
    real_keep, keep, metrics = stage.select(jax.random.key(3), None, {"samples": samples}, real_part, knobs)
    # SE of a rate p over n draws: sqrt(p (1 - p) / n) <= 0.0015; 5 SE.
    assert float(metrics["detected_synthetic_rate"]) == pytest.approx(0.7, abs=0.0075)
    assert float(jnp.mean(keep)) == pytest.approx(0.3, abs=0.0075)
    assert float(metrics["detected_real_rate"]) == pytest.approx(0.1, abs=0.005)
    assert float(jnp.min(real_keep[:n])) == 1.0  # the reserve is never flagged
    # Down-weighting instead of removal: flagged points keep weight 0.25 and still take their slot.
    knobs["detected_weight"] = jnp.float32(0.25)
    real_keep, keep, _ = stage.select(jax.random.key(3), None, {"samples": samples}, real_part, knobs)
    assert set(np.unique(np.asarray(keep)).tolist()) == {0.25, 1.0}
    regime = Regime(name="replace", samples_per_generation=n, real_slots=0, capacity=0, use_statistics=False)
    np.testing.assert_array_equal(regime.synthetic_weights(keep, jnp.int32(0)), keep)


def test_synthetic_budget_keeps_the_first_survivors_up_to_m_minus_real():
    regime = Regime(
        name="replace", samples_per_generation=4, real_slots=2, capacity=0, use_statistics=False, oversample=2
    )
    keep = jnp.asarray([0, 1, 1, 0, 1, 1, 1, 0], jnp.float32)
    np.testing.assert_array_equal(regime.synthetic_weights(keep, jnp.int32(1)), [0, 1, 1, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(regime.synthetic_weights(jnp.ones(8), jnp.int32(0))[:5], [1, 1, 1, 1, 0])


@pytest.mark.parametrize(
    "schedule, expected",
    [
        ("constant", [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]),
        ("linear", [0.5, 0.4, 0.3, 0.2, 0.1, 0.1]),  # rho_end 0.1 reached after T = 4 generations, then held
        (
            "exponential",
            [0.5, 0.1 + 0.4 * 2**-0.25, 0.1 + 0.4 * 2**-0.5, 0.1 + 0.4 * 2**-0.75, 0.3, 0.1 + 0.2 / 2**0.25],
        ),
        ("step", [0.5, 0.5, 0.5, 0.5, 0.1, 0.1]),  # rho for g <= T = 4
    ],
)
def test_schedules_give_the_configured_real_fractions(schedule, expected):
    knobs = {
        "real_fraction": jnp.float32(0.5),
        "final_real_fraction": jnp.float32(0.1),
        "schedule_generations": jnp.float32(4.0),
    }
    got = [float(supply.real_fraction_at(schedule, knobs, jnp.int32(g))) for g in range(1, 7)]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    regime = Regime(
        name="replace",
        samples_per_generation=1000,
        real_slots=500,
        capacity=0,
        use_statistics=False,
        schedule=schedule,
    )
    counts = [int(regime.real_count(knobs, jnp.int32(g))) for g in range(1, 7)]
    np.testing.assert_array_equal(counts, np.floor(np.asarray(expected) * 1000 + 1e-3).astype(int))


def test_engine_batch_follows_the_schedule_inflow_and_reserve_exactly(gaussian_config):
    """synthetic_share = (M - floor(rho_g M)) / (P_kept + M + n_inflow) each generation, exactly."""
    regime_fields = {
        "real_fraction_schedule": "linear",
        "final_real_fraction": 0.0,
        "schedule_generations": 4.0,
        "real_inflow": (0, 20),
        "preserved_fraction": (0.0, 0.5),
    }
    config = with_blocks(gaussian_config, None, regime_fields, seeds=2, **{"regime.real_fraction": 0.4})
    results = runner.simulate(config)
    share = results.metrics["synthetic_share"]
    assert np.all(np.isnan(share[:, 0]))
    m, n_real = 100, 100
    for chain in range(results.num_chains):
        inflow, preserved = results.knobs["real_inflow"][chain], results.knobs["preserved_fraction"][chain]
        rho = np.maximum(0.4 - 0.1 * np.arange(6), 0.0)
        real = np.floor(rho * m + 1e-3)
        expected = (m - real) / (m + inflow + np.floor(preserved * n_real))
        np.testing.assert_allclose(share[chain, 1:], expected, rtol=1e-6)


def test_preserved_reserve_stops_replace_collapse(gaussian_config):
    """A fixed half of the originals in every training set pins the variance: no collapse after 40 generations."""
    config = with_blocks(
        gaussian_config, None, {"preserved_fraction": (0.0, 0.5)}, seeds=200, num_generations=40, chain_block=200
    )
    results = runner.simulate(config)
    final = results.metrics["trace_ratio"][:, -1]
    keep = results.knobs["preserved_fraction"]
    # Replace with M = 100: each refit multiplies the ratio by chi2_99 / 100, so log ratio_40 has mean
    # 40 E log(chi2_99 / 100) = -0.81 and SD sqrt(40 x 2 / 100) = 0.89: median e^-0.81 = 0.45, and the median of 200
    # chains has SE ~1.25 x 0.89 / sqrt(200) = 0.08 in log; 0.6 is e^0.29, 3.6 SE above it (0.67 = the mean is not).
    assert np.median(final[keep == 0.0]) < 0.6
    # With the reserve the pool is a = 1/3 fixed real points (their ratio s0, E s0 = 0.99) and 2/3 draws from the last
    # fit; the MLE's factor c = 149/150 gives the stationary E v = c a s0 / (1 - c (1 - a)) = 0.98 s0 ~ 0.97. A chain's
    # ratio has SD ~0.2 (the pool's sqrt(2 / 150) = 0.115 inflated by the AR factor 1 / sqrt(1 - 0.66^2) to 0.15, with
    # s0's own sqrt(2 / 100) = 0.14): the median of 200 chains has SE ~0.018 and sits ~0.02 under the mean (skew).
    # 0.85 and 1.1 are > 5 SE from 0.95: a collapsing chain (0.45 above) or a variance blow-up fails it.
    assert 0.85 < np.median(final[keep == 0.5]) < 1.1


def test_likelihood_filter_dropping_the_least_likely_shrinks_variance_by_the_truncated_normal_factor(gaussian_config):
    """Keep the central 90% (drop the 10% least likely): Var of N(0, 1) truncated to |z| <= z_0.95 is
    1 - 2 z phi(z) / 0.9 = 0.6230 (z = 1.6449), so E[trace_ratio] ~ 0.623 per generation (M large: quantile noise)."""
    curation_fields = {"name": "likelihood_filter", "keep_quantiles": ((0.0, 1.0), (0.1, 1.0))}
    config = with_blocks(
        gaussian_config,
        curation_fields,
        None,
        seeds=400,
        num_generations=2,
        chain_block=200,
        samples_per_generation=2000,
        **{"model.real_data_size": 2000},
    )
    results = runner.simulate(config)
    band = results.knobs["keep_quantile_low"]
    ratio = results.metrics["trace_ratio"]
    z = 1.6448536
    factor = 1 - 2 * z * math.exp(-z * z / 2) / math.sqrt(2 * math.pi) / 0.9
    filtered = ratio[band == 0.1]
    # Per chain the generation-1 ratio has SD ~ sqrt(2 / 1800) relative (chi-square) ~ 0.033 on ~0.62; over 400
    # chains the mean's SE is ~0.0012 per generation: 0.01 bounds both the sampling noise and the O(1/M) bias.
    assert np.mean(filtered[:, 1] / filtered[:, 0]) == pytest.approx(factor, abs=0.01)
    assert np.mean(filtered[:, 2] / filtered[:, 0]) == pytest.approx(factor**2, abs=0.01)
    unfiltered = ratio[band == 0.0]
    assert np.mean(unfiltered[:, 1] / unfiltered[:, 0]) == pytest.approx(1 - 1 / 2000, abs=0.01)
    np.testing.assert_allclose(results.metrics["curation_kept_fraction"][band == 0.1, 1:], 0.9)


def test_oversampling_refills_the_budget_after_filtering(gaussian_config):
    curation_fields = {"name": "likelihood_filter", "keep_quantiles": (0.1, 1.0), "oversample": 2}
    results = runner.simulate(with_blocks(gaussian_config, curation_fields, None, seeds=2))
    np.testing.assert_allclose(results.metrics["curation_kept_fraction"][:, 1:], 0.9)
    np.testing.assert_allclose(results.metrics["synthetic_share"][:, 1:], 1.0)  # 180 survivors fill all M = 100 slots


@pytest.mark.production_bits  # chain counts, resume
def test_curated_chains_are_bit_identical_with_4_or_64_chains_and_after_a_resume(gaussian_config, tmp_path):
    curation_fields = {
        "name": "likelihood_filter",
        "keep_quantiles": (0.1, 0.95),
        "likelihood_reference": "generation0",
    }
    config = with_blocks(gaussian_config, curation_fields, None, seeds=4, chain_block=4)
    small = runner.simulate(config)
    large = runner.simulate(runner.as_config({"seeds": 64}, config))
    for name, value in small.metrics.items():
        np.testing.assert_array_equal(value, large.metrics[name][:4], err_msg=name)
    workdir = str(tmp_path / "run")
    runner.run(runner.as_config({"num_generations": 3}, config), workdir)
    resumed = runner.run(config, workdir)
    assert_resumed(workdir, 3, config.num_generations)
    for name, value in small.metrics.items():
        np.testing.assert_array_equal(value, resumed.metrics[name], err_msg=name)


def test_a_quantile_band_sweep_shares_one_compile_and_labels_the_curation(gaussian_config, monkeypatch):
    traces = []  # chunk_chain's Python body runs once per compile
    original = engine.Engine.chunk_chain
    monkeypatch.setattr(
        engine.Engine, "chunk_chain", lambda self, *a: traces.append(self.curation.name) or original(self, *a)
    )
    curation_fields = {"name": ("none", "likelihood_filter"), "keep_quantiles": ((0.0, 0.9), (0.1, 1.0))}
    results = runner.simulate(with_blocks(gaussian_config, curation_fields, None, seeds=2))
    assert traces == ["none", "likelihood_filter"]  # one compile per static curation, both bands in one
    assert sorted(set(results.knobs["curation"])) == ["likelihood_filter", "none"]
    low = results.knobs["keep_quantile_low"][results.knobs["curation"] == "likelihood_filter"]
    np.testing.assert_array_equal(np.sort(low), [0.0, 0.0, 0.1, 0.1])


@pytest.mark.parametrize(
    "curation_fields, regime_fields, field",
    [
        ({"name": "sieve"}, None, "config.curation.name"),
        ({"name": "likelihood_filter", "keep_quantiles": (0.5, 0.2)}, None, "config.curation.keep_quantiles"),
        ({"name": "verifier", "keep_good": 1.0, "keep_bad": 1.5}, None, "config.curation.keep_bad"),
        ({"name": "verifier", "keep_good": 1.0}, None, "config.curation.keep_bad"),
        ({"name": "watermark_filter", "true_positive_rate": 0.9}, None, "config.curation.false_positive_rate"),
        ({"name": "none", "oversample": 0}, None, "config.curation.oversample"),
        ({"name": "none", "likelihood_reference": "gen0"}, None, "config.curation.likelihood_reference"),
        (None, {"real_fraction_schedule": "cosine"}, "config.regime.real_fraction_schedule"),
        (None, {"real_fraction_schedule": "linear"}, "config.regime.final_real_fraction"),
        (None, {"real_inflow": -3}, "config.regime.real_inflow"),
        (None, {"preserved_fraction": 1.5}, "config.regime.preserved_fraction"),
    ],
)
def test_bad_mitigation_settings_name_the_field(gaussian_config, curation_fields, regime_fields, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        runner.simulate(with_blocks(gaussian_config, curation_fields, regime_fields))


def test_a_schedule_sweep_groups_constant_chains_once_though_they_lack_the_schedule_knobs(gaussian_config):
    regime_fields = {
        "real_fraction_schedule": ("constant", "step"),
        "final_real_fraction": (0.0, 0.1),
        "schedule_generations": 2.0,
    }
    results = runner.simulate(with_blocks(gaussian_config, None, regime_fields, seeds=2, num_generations=2))
    groups = {tuple(labels.items()): len(chains) for labels, chains in results.knob_groups()}
    assert groups == {
        # NaN knobs group together (NaN != NaN would give one group per chain).
        (("real_fraction_schedule", "constant"), ("final_real_fraction", None), ("schedule_generations", None)): 2,
        (("real_fraction_schedule", "step"), ("final_real_fraction", 0.0), ("schedule_generations", 2.0)): 2,
        (("real_fraction_schedule", "step"), ("final_real_fraction", 0.1), ("schedule_generations", 2.0)): 2,
    }


def test_every_curation_name_is_a_table_entry_with_declared_fields_and_contract_metrics():
    """Adding an operator is one CURATION_OPERATORS entry; what must agree with it elsewhere is checked here."""
    from collapse_jax.analysis import breakdown
    from collapse_jax.host import config_schema
    from collapse_jax.models.fields import INACTIVE_CURATION
    from experiments.configs import common

    shared = config_schema.shared_fields()
    assert shared["curation.name"].choices == tuple(curation.CURATION_OPERATORS) == curation.CURATIONS
    block = common.get_config().curation
    for name, operator in curation.CURATION_OPERATORS.items():
        knob_paths = {
            **operator.knob_fields,
            **operator.optional_knob_fields,
            **(operator.model_detector_knob_fields or {}),
        }
        for path in knob_paths.values():  # every knob's field is declared by its operator
            assert path.startswith("curation.") and path.split(".", 1)[1] in operator.config_fields, (name, path)
        for field, declaration in operator.config_fields.items():
            assert shared[f"curation.{field}"] == declaration  # the validator checks it
            # common.py writes it (so --config.curation.<field>= overrides work), unset or at its inactive value.
            assert field in block and block[field] in (None, INACTIVE_CURATION.get(field)), (name, field)
        # The report treats curation metrics as bookkeeping: analysis must know each name (from models/contract.py).
        assert set(operator.metric_names) <= set(breakdown.BOOKKEEPING_METRICS), name
        if operator.needs is not None:
            protocol, hook = operator.needs
            assert hook in dir(protocol), (name, hook)
        assert (operator.select is None) == (name == "none")
