"""Vmapped JAX EM for many chains vs a loop of scikit-learn GaussianMixture fits: same data, init and iterations.

python -m benchmarks.gmm_vs_sklearn [--chains=256 --iterations=50 --points=1000 --sklearn_fits=32]
Both run a fixed iteration budget (tol = 0) from the same initial parameters, in this one process; sklearn is timed on
the first `sklearn_fits` data sets (its per-fit cost does not depend on the data at a fixed iteration count).
"""

from __future__ import annotations

import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from collapse_jax.models import gmm


def compare(
    chains: int = 256,
    iterations: int = 50,
    points: int = 1000,
    components: int = 2,
    sklearn_fits: int = 32,
    blas_threads: int = 1,
    repeats: int = 3,
) -> dict:
    """Seconds per fit of the vmapped JAX EM and of a scikit-learn loop, and their largest means difference."""
    data = jax.random.normal(jax.random.key(0), (chains, points, 2))
    mask = jnp.ones((chains, points))
    keys = jax.random.split(jax.random.key(1), chains)
    initial = jax.vmap(lambda k, x, m: gmm.initial_responsibilities(k, x, m, components, "kmeans", 10))(
        keys, data, mask
    )
    starts = jax.vmap(lambda x, m, r: gmm.m_step(x.T, m, r, 1e-6, "full"))(data, mask, initial)

    fit_all = jax.jit(jax.vmap(lambda x, m, s: gmm.expectation_maximization(x, m, s, iterations, 0.0, 1e-6, "full")[0]))
    jax.block_until_ready(fit_all(data, mask, starts))  # compile
    jax_seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        fitted = jax.block_until_ready(fit_all(data, mask, starts))
        jax_seconds.append(time.perf_counter() - started)
    jax_per_fit = min(jax_seconds) / chains

    host = {name: np.asarray(value, np.float64) for name, value in starts.items()}
    host_data = np.asarray(data, np.float64)
    count = min(sklearn_fits, chains)
    agreement = []
    limits = threadpool_limits(blas_threads) if blas_threads > 0 else None
    started = time.perf_counter()
    for i in range(count):
        reference = GaussianMixture(
            components,
            tol=0.0,
            max_iter=iterations,
            reg_covar=1e-6,
            weights_init=host["weights"][i] / host["weights"][i].sum(),
            means_init=host["means"][i],
            precisions_init=np.linalg.inv(host["covariances"][i]),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tol = 0 never converges by design
            reference.fit(host_data[i])
        agreement.append(np.max(np.abs(reference.means_ - np.asarray(fitted["means"][i]))))
    sklearn_per_fit = (time.perf_counter() - started) / count
    if limits is not None:
        limits.restore_original_limits()

    return {
        "jax_per_fit_s": jax_per_fit,
        "jax_all_s": min(jax_seconds),
        "sklearn_per_fit_s": sklearn_per_fit,
        "sklearn_fits": count,
        "max_means_difference": float(max(agreement)),
    }


def _define_flags() -> None:
    """Command-line flags, defined only when this file is the program (the suite imports `compare`)."""
    flags.DEFINE_integer("chains", 256, "Independent fits (chains) vmapped in one JAX call.")
    flags.DEFINE_integer("iterations", 50, "EM iterations per fit, for both implementations.")
    flags.DEFINE_integer("points", 1000, "M: points per fit (Shumailov et al.'s setting: 1000, 2-D, K = 2).")
    flags.DEFINE_integer("components", 2, "K: mixture components.")
    flags.DEFINE_integer("sklearn_fits", 32, "How many of the fits to time with scikit-learn.")
    flags.DEFINE_integer(
        "sklearn_blas_threads",
        1,
        "BLAS threads for sklearn (0: library default; a 2x2 solve_triangular took 12 ms"
        " with the default pool on a loaded 2-core machine vs microseconds with 1 thread).",
    )
    flags.DEFINE_integer("repeats", 3, "Timed repeats of the JAX call (the best is reported).")


def main(argv: list[str]) -> None:
    del argv
    f = flags.FLAGS
    chains, iterations, points, components = f.chains, f.iterations, f.points, f.components
    result = compare(chains, iterations, points, components, f.sklearn_fits, f.sklearn_blas_threads, f.repeats)
    jax_per_fit, sklearn_per_fit, count = result["jax_per_fit_s"], result["sklearn_per_fit_s"], result["sklearn_fits"]
    print(
        f"device: {jax.devices()[0].device_kind}; {chains} chains x {iterations} EM iterations, M = {points}, "
        f"K = {components}"
    )
    print(f"JAX vmapped EM : {jax_per_fit * 1e3:8.3f} ms per fit ({result['jax_all_s']:.3f} s for all {chains})")
    print(
        f"sklearn loop   : {sklearn_per_fit * 1e3:8.3f} ms per fit "
        f"(timed on {count} fits, BLAS threads {f.sklearn_blas_threads or 'default'})"
    )
    print(f"speed-up       : {sklearn_per_fit / jax_per_fit:8.1f}x")
    print(f"max |means difference| JAX vs sklearn over the timed fits: {result['max_means_difference']:.2e}")


if __name__ == "__main__":
    _define_flags()
    app.run(main)
