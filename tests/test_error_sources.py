"""The report's error-sources section (collapse_jax/analysis/error_sources.py) on hand-built results."""

import dataclasses
import itertools
import json
import os

import numpy as np

from collapse_jax.analysis import error_sources, results
from collapse_jax.analysis.results import Results


def test_drift_rate_is_the_slope_of_the_log_metric_over_the_last_half():
    # A metric decaying as e^{-r g} has log slope -r exactly; the first half (here a jump) is ignored.
    generations = np.arange(41)
    values = np.exp(-np.array([[0.03], [0.0], [0.1]]) * generations)
    values[:, :10] = 5.0
    np.testing.assert_allclose(error_sources.drift_rates(values, generations), [-0.03, 0.0, -0.1], atol=1e-12)
    values[0, 30] = 0.0  # no log: that chain has no rate
    assert np.isnan(error_sources.drift_rates(values, generations)[0])


def test_factor_two_generation_interpolates_the_crossing():
    generations = np.arange(5)
    assert error_sources.factor_two_generation(np.array([1.0, 0.8, 0.6, 0.4, 0.3]), generations) == ("/2", 2.5)
    assert error_sources.factor_two_generation(np.array([1.0, 1.5, 2.5, 3.0, 3.0]), generations) == ("x2", 1.5)
    assert error_sources.factor_two_generation(np.array([1.0, 0.9, 0.8, 0.7, 0.6]), generations) == ("/2", None)


def test_section_has_one_panel_and_one_row_per_combination(tmp_path):
    # 2 x 2 x 2 switches, 3 chains each; the metric decays at a rate set by how many sources are on.
    rows = list(itertools.product((False, True), ("gaussian", "mixture"), ("exact", "gradient_descent")))
    knobs = {name: [] for name in ("population_fit", "truth", "fit_method", "seed")}
    metric = []
    generations = np.arange(21)
    for population, truth, method in rows:
        on = (not population) + (truth != "gaussian") + (method != "exact")
        for seed in range(3):
            for name, value in zip(knobs, (population, truth, method, seed)):
                knobs[name].append(value)
            metric.append(np.exp(-0.01 * on * generations))
    results = Results(
        metrics={"trace_ratio": np.array(metric), "failed": np.zeros((24, 21))},
        knobs={name: np.array(values) for name, values in knobs.items()},
        config={"model": {"name": "gaussian"}, "report": {"metrics": ["trace_ratio"]}},
        chain_ids=np.arange(24),
    )
    os.makedirs(tmp_path / "plots")
    lines = error_sources.section(results, str(tmp_path))
    table = [line for line in lines if line.startswith("| ") and not line.startswith("| sources")]
    assert len(table) == 8
    assert table[0].startswith("| none (all off) |") and "+0.00e+00" in table[0]
    assert table[-1].startswith("| statistical + expressivity + approximation |") and "-3.00e-02" in table[-1]
    assert (tmp_path / "plots" / "error_sources_trace_ratio.png").stat().st_size > 10_000
    # A run that sweeps no switch gets no section.
    plain = Results(metrics=results.metrics, knobs={"seed": np.arange(24)}, config={}, chain_ids=np.arange(24))
    assert error_sources.section(plain, str(tmp_path)) == []


def test_each_family_names_its_own_switches():
    # GMM: full EM is the exact fit and fewer components than the truth's blobs is the expressivity error; discrete:
    # merged bins (num_bins < K) and add-alpha smoothing (the switches each family declares on its class).
    def on(family, labels, context):
        results = Results(metrics={}, knobs={}, config={"model": {"name": family}}, chain_ids=np.arange(0))
        return error_sources.sources_on(labels, context, error_sources.run_switches(results))

    gmm = {"truth_components": 3}
    assert on("gmm", {"population_fit": True, "num_components": 3, "fit_method": "em"}, gmm) == ()
    assert on("gmm", {"population_fit": True, "num_components": 2, "fit_method": "em"}, gmm) == ("expressivity",)
    assert on("gmm", {"population_fit": False, "fit_method": "truncated_em"}, gmm) == ("statistical", "approximation")
    discrete = {"num_outcomes": 10}
    assert on("discrete", {"population_fit": True, "num_bins": 10, "smoothing": 0.0}, discrete) == ()
    assert on("discrete", {"population_fit": True, "num_bins": 5, "smoothing": 0.5}, discrete) == (
        "expressivity",
        "approximation",
    )
    # A family that declares no switches (or one not importable here) has none: the report gets no section.
    assert error_sources.family_switches("poisson") == error_sources.family_switches("no_such_family") == {}
    assert error_sources.combination_title(()) == "none (all off)"


def test_budget_switches_of_the_vae_and_lm_turn_on_below_the_largest_value_swept():
    # An LM has no truth outside it and no exact fit: fewer samples per generation, fewer layers and a lower learning
    # rate than the run's largest turn the statistical, expressivity and approximation sources on.
    knobs = {
        "samples_per_generation": np.array([256, 1024, 1024, 1024]),
        "num_layers": np.array([2, 2, 1, 2]),
        "learning_rate": np.array([1e-4, 1e-4, 1e-4, 1e-5]),
        "seed": np.arange(4),
    }
    results = Results(
        metrics={"perplexity": np.ones((4, 3)), "failed": np.zeros((4, 3))},
        knobs=knobs,
        config={"model": {"name": "lm"}},
        chain_ids=np.arange(4),
    )
    assert error_sources.swept_switches(results) == ["samples_per_generation", "num_layers", "learning_rate"]
    switches = error_sources.run_switches(results)
    on = [error_sources.sources_on({name: knobs[name][chain] for name in switches}, {}, switches) for chain in range(4)]
    assert on == [("statistical",), (), ("expressivity",), ("approximation",)]
    # The same columns in a Gaussian run are not switches.
    results.config["model"]["name"] = "gaussian"
    assert error_sources.swept_switches(results) == []


def test_budget_panels_are_named_by_the_settings_they_compare_never_all_off():
    # An LM has no exact fit: the chain at the run's largest budgets has the least error swept, not none.
    knobs = {
        "samples_per_generation": np.array([1024, 256, 1024]),
        "num_layers": np.array([2, 2, 2]),
        "learning_rate": np.array([1e-4, 1e-4, 1e-5]),
        "seed": np.arange(3),
    }
    results = Results(
        metrics={"perplexity": np.ones((3, 2)), "failed": np.zeros((3, 2))},
        knobs=knobs,
        config={"model": {"name": "lm"}},
        chain_ids=np.arange(3),
    )
    titles = [entry["title"] for entry in error_sources._lines(results)]
    assert titles == [
        "M = 1024, lr 0.0001: largest budgets",
        "M = 256, lr 0.0001: statistical",
        "M = 1024, lr 1e-05: approximation",
    ]
    assert not any("all off" in title for title in titles)


def test_diffusion_has_a_fourth_source_the_sampler(tmp_path):
    # Fewer sampling steps than the run's largest, or a truncation t0 > 0, turn the sampler's own error on; the
    # section draws and tabulates all four sources.
    rows = list(itertools.product((256, 1024), (32, 128), (100, 400), (16, 64)))
    names = ("samples_per_generation", "width", "train_steps", "sampling_steps")
    knobs = {name: np.array([row[i] for row in rows]) for i, name in enumerate(names)}
    knobs["truncation"], knobs["seed"] = np.zeros(len(rows)), np.arange(len(rows))
    results = Results(
        metrics={"energy_distance": np.ones((len(rows), 3)), "failed": np.zeros((len(rows), 3))},
        knobs=knobs,
        config={"model": {"name": "diffusion"}, "report": {"metrics": ["energy_distance"]}},
        chain_ids=np.arange(len(rows)),
    )
    switches = error_sources.run_switches(results)
    assert error_sources.sources_on({"sampling_steps": 16, "truncation": 0.0}, {}, switches) == ("sampler",)
    assert error_sources.sources_on({"sampling_steps": 64, "truncation": 0.1}, {}, switches) == ("sampler",)
    assert error_sources.sources_on({"samples_per_generation": 1024, "sampling_steps": 64}, {}, switches) == ()
    os.makedirs(tmp_path / "plots")
    table = [line for line in error_sources.section(results, str(tmp_path)) if line.startswith("| M = ")]
    assert len(table) == 16
    assert table[0].startswith("| M = 1024, width 128, 400 steps, 64 sampler steps: largest budgets |")
    assert table[-1].startswith(
        "| M = 256, width 32, 100 steps, 16 sampler steps: statistical + expressivity + approximation + sampler |"
    )


def test_switches_recorded_in_run_json_give_the_section_the_family_class_gives():
    # run.json records each switch as dataclasses.asdict (JSON: tuples become lists); read back, every family's
    # declarations are the ones on its class, and a run that recorded them needs no import of its family.
    for family in ("gaussian", "gmm", "discrete", "vae", "lm", "diffusion"):
        declared = error_sources.family_switches(family)
        assert declared, family
        recorded = json.loads(json.dumps({name: dataclasses.asdict(switch) for name, switch in declared.items()}))
        results = Results(metrics={}, knobs={}, config={"model": {"name": "not_importable_here"}}, chain_ids=[])
        results.error_source_switches = recorded
        assert error_sources.declared_switches(results) == declared, family
    rows = list(itertools.product((False, True), ("exact", "gradient_descent")))
    knobs = {
        "population_fit": np.repeat([p for p, _ in rows], 2),
        "fit_method": np.repeat([m for _, m in rows], 2),
        "seed": np.tile(np.arange(2), len(rows)),
    }
    metric = np.exp(-0.01 * np.arange(8)[:, None] * np.arange(11))
    config = {"model": {"name": "gaussian"}, "report": {"metrics": ["trace_ratio"]}}
    from_class = Results({"trace_ratio": metric, "failed": np.zeros_like(metric)}, knobs, config, np.arange(8))
    recorded = Results(
        {"trace_ratio": metric, "failed": np.zeros_like(metric)},
        knobs,
        {**config, "model": {"name": "not_importable_here"}},
        np.arange(8),
        error_source_switches=json.loads(
            json.dumps({k: dataclasses.asdict(s) for k, s in error_sources.family_switches("gaussian").items()})
        ),
    )
    lines = error_sources.section(from_class, "unused", make_plots=False)
    assert lines and lines == error_sources.section(recorded, "unused", make_plots=False)
    # Recorded as none: no section, whatever the class would say.
    recorded.error_source_switches = {}
    assert error_sources.section(recorded, "unused", make_plots=False) == []


def test_a_run_records_its_family_s_switches_in_run_json(gaussian_config, tmp_path):
    from collapse_jax.host import runner

    workdir = str(tmp_path / "run")
    runner.run(runner.as_config({"num_generations": 2, "make_plots": False}, gaussian_config), workdir)
    with open(os.path.join(workdir, "run.json")) as handle:
        recorded = json.load(handle)["error_source_switches"]
    switches = error_sources.family_switches("gaussian")
    expected = json.loads(json.dumps({name: dataclasses.asdict(switch) for name, switch in switches.items()}))
    assert recorded == expected and recorded  # the Gaussian declares its switches (JSON keeps tuples as lists)
    assert results.load(workdir).error_source_switches == recorded
