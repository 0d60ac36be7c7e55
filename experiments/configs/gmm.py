"""GMM collapse: fit a 2-component Gaussian mixture by EM to M = 1000 points, sample M from it, repeat 2050 times.

Reproduces the GMM experiment of Shumailov et al. (2024, "AI models collapse when trained on recursively generated
data", official notebook): 2-D data from one N(0, I) blob, GaussianMixture(2, full covariance, tol 1e-5), replace;
their single run goes from component std ≈ 0.90 at generation 0 to ≈ 0.01 at generation 2050. Here: many seeds.

Launch:  python -m experiments.main --config=experiments/configs/gmm.py --workdir=/tmp/gmm
Runtime: about 4 min on a 2-core CPU (32 chains x 2051 fits x up to 100 EM iterations; ~18 us per chain-iteration).
Override any field: --config.seeds=128 --config.model.max_iterations=2000 --config.regime.name=accumulate
"""

import ml_collections

from experiments.configs import common


def get_config() -> ml_collections.ConfigDict:
    config = common.get_config()
    config.seeds = 32
    config.num_generations = 2050
    # M: points each generation trains on (and synthetic points each fitted mixture draws).
    config.samples_per_generation = 1000

    # Model family: a module in collapse_jax/models/.
    config.model.name = "gmm"
    # d: data dimension; the truth is one blob N(true_mean * 1, true_std^2 I).
    config.model.dim = 2
    config.model.true_mean = 0.0
    config.model.true_std = 1.0
    # T: equal-weight blobs of the truth, centres truth_separation apart along the first axis (1: the paper's one
    # blob; T > num_components switches functional expressivity error on).
    config.model.truth_components = 1
    config.model.truth_separation = 0.0
    # K: mixture components fitted each generation.
    config.model.num_components = 2
    # full (as the paper) or diag covariances.
    config.model.covariance_type = "full"
    # kmeans (sklearn's default: k-means++ seeds then Lloyd steps) | k-means++ (seeds only) | random responsibilities.
    config.model.init_method = "kmeans"
    # Lloyd iterations of the kmeans init (sklearn runs KMeans to convergence; 10 reaches it on these blobs).
    config.model.kmeans_iterations = 10
    # EM stops (its params freeze) once |mean log-lik change| < tolerance; the paper uses tol 1e-5, max_iter 2000.
    config.model.tolerance = 1e-5
    # Fixed scan length: sklearn needed at most 73 iterations in 300 generations of this chain (median 3), so 100
    # rarely binds while 2000 would cost 20x; the em_converged metric reports every fit that hit the cap.
    config.model.max_iterations = 100
    # Added to every covariance diagonal, as sklearn's reg_covar (keeps collapsed components invertible).
    config.model.reg_covar = 1e-6
    # Size of the real training set at generation 0 (None: M).
    config.model.real_data_size = None
    # Statistical error off: every fit is EM on the previous model's distribution itself (the truth at generation 0)
    # by Gauss-Hermite quadrature with quadrature_nodes nodes per axis per component, not on M samples (replace,
    # real_fraction 0 only). False: the paper's finite-sample fits.
    config.model.population_fit = False
    config.model.quadrature_nodes = 12
    # em: EM to the tolerance; truncated_em: exactly fit_steps iterations from a fresh init_method start each
    # generation (functional approximation error on).
    config.model.fit_method = "em"
    config.model.fit_steps = 2
    # fresh: a new init_method start each generation (a new sklearn GaussianMixture, the paper); previous: warm start.
    config.model.fit_init = "fresh"
    # Held-out real points for nll_real_test (shared by all chains).
    config.model.test_size = 2000

    config.chunk_generations = 50
    config.checkpoint_every = 500
    return common.finish(config)
