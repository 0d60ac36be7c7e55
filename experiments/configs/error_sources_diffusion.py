"""The error sources of a learned diffusion model in the loop: Shumailov et al.'s three, plus the sampler's own, as
2 x 2 x 2 x 2 budget switches on diffusion_toy's 2-D mixture (fully synthetic loop).

A learned denoiser has no exact fit, so each source is a budget, on below the largest value the run sweeps
(collapse_jax/models/diffusion/family.py): statistical, M = samples_per_generation 128 / 512; expressivity, the MLP's
width 16 / 64 (static); approximation, train_steps 100 / 400 AdamW steps a generation (a chain knob: one compile);
the sampler, sampling_steps 8 / 32 (static). The report's error-sources section draws one panel per combination,
titled by the settings it compares ("M = 512, width 64, 400 steps, 32 sampler steps: largest budgets"). The exact vs
truth denoisers (the statistical error alone, off with the truth's) are experiments/configs/diffusion_oracle.py.

Launch:  python -m experiments.main --config=experiments/configs/error_sources_diffusion.py --workdir=/tmp/es_diffusion
Runtime: see notes/diffusion.md (8 static groups x 2 step counts x 4 seeds = 64 chains, 6 generations).
"""

import ml_collections

from experiments.configs import diffusion_toy


def get_config() -> ml_collections.ConfigDict:
    config = diffusion_toy.get_config()
    # Statistical: M (static: one group per value).
    config.samples_per_generation = (128, 512)
    config.seeds = 4
    config.num_generations = 6
    config.chunk_generations = 3
    config.chain_block = 8
    # The fully synthetic loop, where every source compounds.
    config.regime.name = "replace"
    config.regime.real_fraction = 0.0
    # Expressivity: the MLP's width (static).
    config.model.width = (16, 64)
    # Approximation: AdamW steps per generation (a chain knob; the scan runs to 400, masked per chain).
    config.model.train_steps = (100, 400)
    # The sampler: uniform steps from t = 1 to t0 = 0 (static).
    config.model.sampling_steps = (8, 32)
    return config
