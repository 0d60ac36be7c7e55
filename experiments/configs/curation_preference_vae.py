"""Class preference on the VAE (Ferbach et al., "Self-consuming generative models with curated data provably optimize
human preferences", NeurIPS 2024, with a classifier as the human): experiments/configs/vae_digits.py's loop (8x8
digits, conv VAE, binarized decoder draws, replace) where each of the M training slots is filled by one of K = 4
decoded candidates, kept with Bradley-Terry probability exp(r_i) / sum_j exp(r_j), r(x) = beta log p(c | x) from the
feature classifier trained once on real digits (c = curation.preferred_class = 0), beta in (0, 2, 8); beta = 0 is a
uniform pick (uncurated). Claim: preferred_class_share (the share of a generation's images the classifier calls c)
rises over generations with beta while diversity falls (class_histogram_entropy, latent_std_gen0_encoder, recall):
the reward / diversity trade-off. notes/literature.md has the numbers.

Baseline in the same run: beta = 0 picks a candidate uniformly (uncurated).
Launch:  python -m experiments.main --config=experiments/configs/curation_preference_vae.py --workdir=/tmp/pref_vae
Runtime: 18 min 55 s wall, 8 min 03 s user CPU, on the shared 2-core CPU under a load average of ~10 from other jobs
(2026-12-02; 1 group x 12 chains x 10 generations of 4 x 1,497 candidates; not measured idle: vae_digits.py's 8
chains take 63 s idle, and the chain cost here is about 1.5x theirs).
Override any field: --config.curation.preferred_class='(0, 3)' --config.seeds=8 --config.curation.reward_scale=1.0
"""

import ml_collections

from experiments.configs import common, vae_digits


def get_config() -> ml_collections.ConfigDict:
    config = vae_digits.get_config()
    # Replace only: the next generation trains on the curated images alone (Ferbach et al.'s fully synthetic loop).
    config.regime.name = "replace"
    # seeds (4 per beta: the medians in notes/literature.md) and num_generations (10) are vae_digits.py's.
    # Chains per compiled block (bits do not depend on it): all 3 betas x 4 seeds in one block.
    config.chain_block = 12

    config.curation.name = "preference"
    # K candidates per kept slot; oversample must equal it (K M images are decoded and scored per generation).
    config.curation.candidates = 4
    config.curation.oversample = 4
    # class_preference (the VAE's own reward): r(x) = beta * log softmax(classifier logits(x))[preferred_class].
    config.curation.reward = "class_preference"
    # beta (a chain knob): 0 = uncurated, 2 = keep ~ p(c | x)^2, 8 = nearly the most surely-c candidate of the K.
    config.curation.reward_scale = (0.0, 2.0, 8.0)
    # c: the preferred digit (a chain knob; a tuple sweeps it inside the compile).
    config.curation.preferred_class = 0

    # Strength figures: the reward side (class share, mean reward) and the diversity side.
    config.report.metrics = (
        "preferred_class_share",
        "mean_reward",
        "class_histogram_entropy",
        "latent_std_gen0_encoder",
        "recall",
        "frechet_distance",
    )
    return common.finish(config)
