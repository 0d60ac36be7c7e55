"""MAD's three self-consuming loops (Alemohammad et al., "Self-Consuming Generative Models Go MAD", ICLR 2024) x the
sampling bias lambda, with diffusion_toy's learned MLP denoiser on the 2-D mixture.

Fully synthetic loop: replace at real share 0. Synthetic augmentation loop: replace at real share 1/2 (the chain's
fixed real set fills half of every generation's training set). Fresh data loop: fresh at real share 1/2 (half drawn
anew from the truth each generation); fresh at share 0 is the fully synthetic loop itself (replace's bits). Each x
lambda in {1, 0.9, 0.8} (lambda scales the sampler's injected noise, x_1 included; < 1 trades diversity for quality).

Launch:  python -m experiments.main --config=experiments/configs/diffusion_mad.py --workdir=/tmp/diffusion_mad
Runtime: see notes/diffusion.md (2 regimes x 2 shares x 3 lambdas x 8 seeds = 96 chains, 8 generations, 300 AdamW
steps per generation; the same work per chain as diffusion_toy).
"""

import ml_collections

from experiments.configs import diffusion_toy


def get_config() -> ml_collections.ConfigDict:
    config = diffusion_toy.get_config()
    # Chains per (regime, real share, lambda).
    config.seeds = 8
    # Replace: fully synthetic (share 0) or synthetic augmentation with the fixed real set (share 1/2); fresh: new
    # real data each generation (diffusion_toy's real shares, 0 and 1/2).
    config.regime.name = ("replace", "fresh")
    # lambda, a chain knob: one compile serves every value.
    config.model.sampling_bias = (1.0, 0.9, 0.8)
    # 48 chains per regime in one vmapped block.
    config.chain_block = 48
    return config
