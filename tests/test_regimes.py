"""Regime semantics checked through exact consequences (real fraction 1, fresh data, accumulate pools)."""

import numpy as np

from collapse_jax.host import runner


def test_replace_with_all_real_data_refits_the_original_set_every_generation(gaussian_config):
    # rho = 1 with real_data_size = M: each generation draws all M original points (without replacement), so every
    # fit equals the generation-0 fit (up to summation order).
    r = runner.simulate(runner.as_config({"regime.real_fraction": 1.0}, gaussian_config))
    trace = r.metrics["trace_ratio"]
    np.testing.assert_allclose(trace, np.repeat(trace[:, :1], trace.shape[1], axis=1), rtol=1e-5)


def test_real_fraction_uses_floor_rho_m_real_points(gaussian_config):
    # At rho M = 2.1, 2.7, 2.9 (M = 10) floor gives 2, 2, 2, round 2, 3, 3 and ceil 3, 3, 3.
    from collapse_jax.core import regimes
    from collapse_jax.models import base

    small = runner.as_config({"regime.real_fraction": 0.29, "samples_per_generation": 10}, gaussian_config)
    regime = regimes.make_regime(small, base.make_model(small), {"real_fraction": 0.29})
    counts = [int(regime.real_count({"real_fraction": np.float32(rho)})) for rho in (0.21, 0.27, 0.29)]
    assert counts == [2, 2, 2] and regime.real_slots == 2
    # In a run: rho M = 25.7 with real_data_size = floor(rho M) = 25 (round or ceil would ask for 26 of the 25 points,
    # a config error), so the real part is the whole original set each generation and the pool mean of replace is
    # 1/4 original mean + 3/4 synthetic mean: the error stays bounded.
    config = runner.as_config(
        {
            "regime.real_fraction": (0.0, 0.257),
            "model.real_data_size": 25,
            "samples_per_generation": 100,
            "seeds": 400,
            "chain_block": 400,
            "num_generations": 60,
            "chunk_generations": 20,
        },
        gaussian_config,
    )
    r = runner.simulate(config)
    final = r.metrics["trace_ratio"][:, -1]
    anchored = final[np.isclose(r.knobs["real_fraction"], 0.257)]
    free = final[r.knobs["real_fraction"] == 0.0]
    # Replace with rho = 0, M = 100, MLE: the median falls to 0.14 by n = 100 (SCIENCE.md), ~0.4 at n = 61; the
    # anchored chains keep a quarter of every pool from the original set and stay near 1.
    assert len(anchored) == len(free) == 400
    assert np.median(anchored) > 0.8 > 0.5 > np.median(free)


def test_fresh_real_data_each_generation_prevents_collapse(gaussian_config):
    # MAD's fresh-data loop with rho = 1: every fit sees M new truth samples, so E[trace_ratio] = (M-1)/M (MLE) at
    # every generation. Var of chi2_{M-1}/M = 2(M-1)/M^2; 4.5 SE tolerance over 800 chains per column.
    m, chains = 50, 800
    r = runner.simulate(
        runner.as_config(
            {
                "regime.name": "fresh",
                "regime.real_fraction": 1.0,
                "seeds": chains,
                "chain_block": 800,
                "samples_per_generation": m,
            },
            gaussian_config,
        )
    )
    trace = r.metrics["trace_ratio"]
    tolerance = 4.5 * np.sqrt(2 * (m - 1) / m**2 / chains)
    assert np.all(np.abs(trace.mean(axis=0) - (m - 1) / m) < tolerance)


def test_accumulate_subsample_collapses_slower_than_replace_but_more_than_accumulate(gaussian_config):
    config = runner.as_config(
        {
            "regime.name": ("replace", "accumulate_subsample", "accumulate"),
            "seeds": 300,
            "chain_block": 300,
            "num_generations": 40,
            "chunk_generations": 20,
            "samples_per_generation": 20,
        },
        gaussian_config,
    )
    r = runner.simulate(config)
    final = r.metrics["trace_ratio"][:, -1]
    medians = {
        name: np.median(final[r.knobs["regime"] == name]) for name in ("replace", "accumulate_subsample", "accumulate")
    }
    assert medians["replace"] < medians["accumulate_subsample"] < medians["accumulate"]


def test_the_allowed_regime_names_are_exactly_the_table_and_each_entry_builds(gaussian_config):
    # Adding a regime is one REGIME_KINDS entry: the validator's choices and make_regime read the table, so a name
    # allowed without an entry (or an entry the validator refuses) cannot exist.
    from collapse_jax.core import regimes
    from collapse_jax.host import config_schema
    from collapse_jax.models import base

    assert config_schema.shared_fields()["regime.name"].choices == tuple(regimes.REGIME_KINDS) == regimes.REGIMES
    for name, kind in regimes.REGIME_KINDS.items():
        config = runner.as_config({"regime.name": name, "regime.real_fraction": 0.5}, gaussian_config)
        model = base.make_model(config)
        regime = regimes.make_regime(config, model, {"real_fraction": 0.5})
        assert regime.kind is kind
        # Gaussian has sufficient statistics: a statistics pool replaces the raw one exactly where the entry allows it.
        assert regime.use_statistics == kind.statistics_pool
        assert (regime.capacity > 0) == (kind.accumulates and not kind.statistics_pool)
        assert regime.needs_real_data_each_generation == (not kind.real_from_truth)
