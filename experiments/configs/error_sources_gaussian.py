"""Shumailov et al.'s three sources of error on the Gaussian, switched on and off independently: the 2 x 2 x 2 sweep.

Paper setting: Shumailov et al. (2024, "AI models collapse when trained on recursively generated data"), Sec. 3's
statistical approximation error (finite M), functional expressivity error (one Gaussian for the two-Gaussian mixture
0.5 N(-a, s^2) + 0.5 N(a, s^2)) and functional approximation error (the learning procedure: here k steps of gradient
descent on the NLL from a fixed initialization). Each switch is a static field, so the 8 combinations are 8 compiled
groups in one results table; the report's "error sources" section draws one panel per combination.
  statistical   on: fit M = 100 samples of the previous model;  off: population_fit (fit the model itself)
  expressivity  on: truth = mixture (a = 3, s = 2);              off: truth = gaussian N(0, s^2)
  approximation on: 40 gradient steps (eta 0.05) from N(0, 1);   off: the exact moment fit
Measured decomposition and figures: notes/error_sources.md.

Launch:  python -m experiments.main --config=experiments/configs/error_sources_gaussian.py --workdir=/tmp/es_gauss
Report:  <workdir>/report.md (or python -m experiments.report --workdir=/tmp/es_gauss --output=/tmp/es_gauss_report)
Runtime: 7 min 12 s on the shared 2-core CPU (8 compiles; the job had ~20% of the CPU), report included.
Result (notes/error_sources.md): median trace ratio at generation 100: all three on 0.084, statistical alone 0.116,
         approximation alone 0.430, expressivity alone 1 (it only sets the first fit); all off: 1 at every generation.
"""

import ml_collections

from experiments.configs import common


def get_config() -> ml_collections.ConfigDict:
    config = common.get_config()  # the shared run fields (seeds, sizes, chunking, checkpoints, curation, report)
    # Chains per combination: 200 seeds put the 10-90% bands within a few percent of their limit.
    config.seeds = 200
    # common.py's 100 generations of M = 100 (SCIENCE.md's (1 - 1/M)^n scale), replace with no real data: the regime
    # in which every source compounds.

    # Model family: collapse_jax/models/gaussian.py.
    config.model.name = "gaussian"
    config.model.dim = 1
    # The truth's location mu0 and scale s (the mixture's components are N(mu0 +- a, s^2); the fixed descent
    # initialization N(0, 1) lies below both truths' scale, so the approximation error pulls the variance down).
    config.model.true_mean = 0.0
    config.model.true_std = 2.0
    config.model.estimator = "mle"
    config.model.sampling_bias = 1.0
    config.model.real_data_size = None
    config.model.test_size = 10_000
    # Exact sufficient statistics instead of points (same law; population_fit needs this path).
    config.model.sampling = "statistics"
    # Expressivity switch: gaussian (inside the family) or mixture (outside it).
    config.model.truth = ("gaussian", "mixture")
    # a: the mixture's half-distance between its two components (a > s: bimodal).
    config.model.truth_separation = 3.0
    # nu: unused here (the Student-t truth; experiments/configs/tails_first_student_t.py).
    config.model.truth_dof = 3.0
    # Statistical switch: False = fit M samples (on), True = fit the previous model's distribution (off).
    config.model.population_fit = (False, True)
    # Approximation switch: exact moments (off) or gradient descent (on).
    config.model.fit_method = ("exact", "gradient_descent")
    # The descent: k steps of size eta from the fixed N(0, 1), no L2 (chain knobs: a tuple sweeps in one compile).
    config.model.fit_steps = 40
    config.model.learning_rate = 0.05
    config.model.fit_init = "fixed"
    config.model.l2_log_scale = 0.0

    # The error-sources section draws these metrics (trace_ratio: the variance; tail_mass_ratio: the 1%/99% tails;
    # w2_sq_to_truth: the distance that sees the expressivity error, which the moment-matched variance hides).
    config.report.metrics = ("trace_ratio", "tail_mass_ratio", "w2_sq_to_truth")
    return common.finish(config)
