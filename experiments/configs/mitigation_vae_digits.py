"""Curation of a VAE's generated images (on Shumailov et al.'s VAE loop): likelihood filter vs verifier.

Setting: experiments/configs/vae_digits.py (scikit-learn's 8x8 digits, conv VAE, binarized decoder draws as the next
generation's data), replace, rho = 0 or 0.1 real images per generation. Between decoding and refitting, the M
candidates pass one curation stage (collapse_jax/core/curation.py), a static group each:
- none: Shumailov's loop;
- likelihood_filter: rank the candidates by their ELBO under the model that generated them and keep a quantile band,
  (0.1, 1) = drop the 10% least likely (a quality filter), (0, 0.9) = drop the 10% most likely;
- verifier: keep an image judged good (within the Mahalanobis radius of a class mean, in the feature space of a
  classifier trained on real digits, that holds 95% of real test digits) w.p. keep_good = 1 and a bad one w.p.
  keep_bad (Feng et al. 2024's oracle verifier with an image-model "good").
Question: does removing unlikely / unrecognizable samples slow the narrowing (latent_std_gen0_encoder) or speed it?

Baseline in the same run: curation none (Shumailov's loop), a static group beside each operator.
Launch:  python -m experiments.main --config=experiments/configs/mitigation_vae_digits.py --workdir=/tmp/vae_curation
Runtime: 5 min 31 s on an idle 2-core CPU (3 groups, 80 chains x 10 generations; notes/vae_curation.md).
"""

import ml_collections

from experiments.configs import common, vae_digits


def get_config() -> ml_collections.ConfigDict:
    config = vae_digits.get_config()
    # Replace only: curation acts on what the next generation trains on, and replace is where collapse is sharp.
    config.regime.name = "replace"
    # rho: share of each generation's M images drawn from the real training set (a chain knob).
    config.regime.real_fraction = (0.0, 0.1)
    # Independent seeds per (curation setting, rho): 8, so a group's median is read from 8 chains.
    config.seeds = 8
    # Chains per compiled block (bits do not depend on it); 16 = one block per (rho, strength) pair of seeds.
    config.chain_block = 16

    # none | likelihood_filter | verifier: a tuple compiles one group per curation (its own knobs swept inside).
    config.curation.name = ("none", "likelihood_filter", "verifier")
    # likelihood_filter: (low, high) quantile bands of the candidates' ELBO kept; a tuple of pairs sweeps per chain.
    config.curation.keep_quantiles = ((0.1, 1.0), (0.0, 0.9))
    # verifier: keep rate of good images (phi) and of bad ones (psi; a tuple sweeps it per chain).
    config.curation.keep_good = 1.0
    config.curation.keep_bad = (0.0, 0.5)

    # Strength figures: final latent spread, Frechet distance, recall and class entropy (mode loss) vs rho and the
    # curation knobs, one line per setting.
    config.report.metrics = ("latent_std_gen0_encoder", "frechet_distance", "recall", "class_histogram_entropy")
    # Not collapsed = final within this relative band of generation 0, per metric: the latent spread falls by at most
    # ~37% in 10 generations (the default 0.5 would call every line safe), FD starts near 10 and may double, recall and
    # class entropy start near their maxima (0.99, 2.28 of 2.30) so a 10% loss is already visible mode loss.
    config.report.collapse_tolerance = {
        "latent_std_gen0_encoder": 0.2,
        "frechet_distance": 1.0,
        "recall": 0.1,
        "class_histogram_entropy": 0.1,
    }
    return common.finish(config)
