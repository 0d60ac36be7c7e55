"""Likelihood filtering of Shumailov's GMM loop: which likelihood band of the synthetic candidates should be kept?

Setting of Shumailov et al. (2024, "AI models collapse when trained on recursively generated data", GMM notebook):
2-D data from one N(0, I) blob, a 2-component full-covariance mixture refitted by EM to M = 1000 points, replace.
Between sampling and refitting, curation.likelihood_filter ranks the M candidates by their log-likelihood under the
model that generated them and keeps the band (low, high) of quantiles: (0, 1) keeps all (the paper's loop), (0.1, 1)
drops the least likely (keep only typical data, a perplexity/quality filter), (0, 0.9) drops the most likely,
(0.05, 0.95) trims both ends. Claim checked: "keeping only typical data accelerates tail loss, dropping the typical
preserves it" (final component_std per band, with 0 or 10% real data per generation).

Baseline in the same run: keep_quantiles (0, 1) keeps every candidate (the paper's loop).
Launch:  python -m experiments.main --config=experiments/configs/mitigation_likelihood_gmm.py \
         --workdir=/tmp/likelihood_gmm
Runtime: 41 s wall on a busy 2-core CPU (load ~6; 4 bands x 2 real fractions x 8 seeds = 64 chains x 100 generations,
1 compile, 3.1 generations/s). Results table: notes/curation_zoo.md.
"""

import ml_collections

from experiments.configs import common, gmm


def get_config() -> ml_collections.ConfigDict:
    config = gmm.get_config()
    # Independent seeds per (band, real fraction).
    config.seeds = 8
    # Generations after the fit on real data: without a filter the median component std falls 0.92 -> 0.68 in 100
    # (notes/zoo_gmm_kde.md); a band that removes x% of the tails shrinks the variance geometrically per generation.
    config.num_generations = 100
    # rho: share of each generation's M points that is real (never filtered: the filter acts on synthetic
    # candidates only); a tuple sweeps it per chain.
    config.regime.real_fraction = (0.0, 0.1)
    # Generations per compiled chunk and chains per block (64 chains: one block).
    config.chunk_generations = 25
    config.chain_block = 64
    # One checkpoint at the end is enough for this short run.
    config.checkpoint_every = 100

    # Quality filter by likelihood (collapse_jax/core/curation.py): model.log_likelihood, the exact mixture density.
    config.curation.name = "likelihood_filter"
    # (low, high) quantile band of the generation's candidates kept; a tuple of pairs sweeps it per chain (one compile).
    config.curation.keep_quantiles = ((0.0, 1.0), (0.1, 1.0), (0.0, 0.9), (0.05, 0.95))

    # Strength figures and breakdowns (collapse_jax/analysis/breakdown.py) for the collapse metric only: final
    # component_std vs real_fraction and vs the band edges, one line per other knob; within 50% of generation 0 = not
    # collapsed.
    config.report.metrics = ("component_std",)
    return common.finish(config)
