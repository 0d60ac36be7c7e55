"""VAE collapse on Fashion-MNIST, reduced to run a few generations on a CPU: the full-size config with fewer steps.

Same architecture (conv 64/128, latent 20), data (all 60k / 10k images, M = 60,000), batch 256, optimizer and metric
sizes as experiments/configs/vae_fashion_mnist.py; only the training budget and the sweep shrink: 400 minibatches per
generation (5.7% of Shumailov's 7,050 = 30 epochs, i.e. 1.7 epochs), 1 seed, replace vs accumulate at rho 0,
3 generations after the real-data fit, chains one at a time (chain_block 1: at batch 256 one chain already fills the
CPU, 8 vmapped chains measured 0.99x of one-by-one; one at a time keeps memory to one chain's activations).

Launch:  python -m experiments.main --config=experiments/configs/vae_fashion_mnist_cpu.py --workdir=/tmp/vae_fashion_cpu
Runtime: 9 min on an idle 2-core CPU (2026-12-01): classifier ~25 s, ~55-60 s per generation per chain (the first
chunk, compile + generations 0-1: ~130 s). Replace: latent_std_gen0_encoder 0.710 -> 0.610 -> 0.537 -> 0.476
(Shumailov et al. MNIST: 0.674 -> 0.608 -> 0.527 -> 0.468); accumulate 0.710 -> 0.636 at generation 3
(notes/vae_fashion_measurement.md).
"""

import ml_collections

from experiments.configs import common, vae_fashion_mnist


def get_config() -> ml_collections.ConfigDict:
    config = vae_fashion_mnist.get_config()
    # One seed per regime: 2 chains (the full config: 4 seeds x 2 regimes x 2 rho = 16 chains).
    config.seeds = 1
    # Generations 0..3: the real-data fit plus 3 refits on generated images (full config: 5).
    config.num_generations = 3
    config.regime.real_fraction = (0.0,)
    # Minibatches of 256 per generation (full config: 7,050 = 30 epochs of 60k).
    config.model.steps_per_generation = 400
    # Chains one after another (lax.map over blocks of 1) rather than vmapped side by side.
    config.chain_block = 1
    return common.finish(config)
