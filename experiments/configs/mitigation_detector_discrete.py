"""Detect-and-remove synthetic data in the discrete (Wright–Fisher) loop: how good must the detector be?

Model of Shumailov et al. (2024) / Kazdan, Schaeffer et al. ("Collapse or Thrive?", 2024): a categorical refitted to
M draws of the previous fit, which is absorbed in one outcome (entropy 0) after ~2M(K-1)/K generations when no real
data enters. Here every generation's batch mixes rho M real draws with synthetic ones, and curation.watermark_filter
(an abstract detector, as for a watermark of Kirchenbauer et al. 2023 whose per-sample power is summarized by two rates)
removes a synthetic point with probability true_positive_rate and a real point with probability false_positive_rate.
Sweep: TPR x FPR x rho; read absorbed, entropy and kl_to_truth at the last generation (notes/curation_zoo.md).

Baseline in the same run: true_positive_rate 0 with false_positive_rate 0 removes nothing: the uncurated loop.
Launch:  python -m experiments.main --config=experiments/configs/mitigation_detector_discrete.py \
         --workdir=/tmp/detector_discrete
Runtime: 21 s wall on a busy 2-core CPU (load ~6; 4 TPR x 3 FPR x 3 rho x 32 seeds = 1152 chains x 400 generations,
1 compile, 27 generations/s). Results table: notes/curation_zoo.md.
"""

import ml_collections

from experiments.configs import common, discrete


def get_config() -> ml_collections.ConfigDict:
    config = discrete.get_config()
    # Independent seeds per (TPR, FPR, rho).
    config.seeds = 32
    # Generations after the fit on real data: 400 ~ 2 E[T] of the uncurated M = 100 chain (K = 10 Zipf), so most
    # rho = 0 chains without a detector are absorbed by the end.
    config.num_generations = 400
    # M: draws per generation (small, so drift is fast enough to see absorption on a CPU in seconds).
    config.samples_per_generation = 100
    # Replace only: each generation trains on its own (curated) batch.
    config.regime.name = "replace"
    # rho: share of the batch's M slots that are real draws from the chain's original real set (a knob).
    config.regime.real_fraction = (0.0, 0.1, 0.3)
    # K: outcomes; beta = 1 gives a Zipf truth with a tail (p0 <= 1/M for the rarest outcomes is not reached at
    # K = 10, so tail_mass tracks the rarest outcomes).
    config.model.num_outcomes = 10
    config.model.zipf_exponent = 1.0
    # Generations per compiled chunk and chains per block.
    config.chunk_generations = 100
    config.chain_block = 1152
    # One checkpoint at the end.
    config.checkpoint_every = 400

    # Abstract detector (the discrete model has no detect_watermark): flagged points are removed from the batch.
    config.curation.name = "watermark_filter"
    # P(flag | synthetic): the detector's power (a tuple sweeps it per chain).
    config.curation.true_positive_rate = (0.0, 0.5, 0.9, 0.99)
    # P(flag | real): wrongly removed human data (a tuple sweeps it per chain).
    config.curation.false_positive_rate = (0.0, 0.1, 0.3)

    # Strength figures and breakdowns for the collapse metrics: outcomes still alive and the fit's entropy vs the
    # detector's true / false positive rates and real_fraction.
    config.report.metrics = ("support_size", "entropy")
    return common.finish(config)
