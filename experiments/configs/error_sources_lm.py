"""The three sources of error of Shumailov et al. (2024) on the tiny LM: 2 x 2 x 2 switches in one command.

An LM has no exact population fit, so the switches are surrogates (collapse_jax/models/lm/family.py):
- statistical approximation: samples_per_generation M = 256 / 1024 continuations (of 1024 real training blocks) at a
  fixed budget of steps_per_generation = 64 steps x batch 16 = 1024 blocks a generation: M = 1024 shows each
  generated block once, M = 256 four times. Whether 4x is large enough is what the sweep measures (not assumed);
- functional expressivity: num_layers 2 (lm_tiny.py's default) / 1, a static sweep field; each depth pretrains and
  caches its own base model (the cache key hashes the whole network);
- functional approximation: learning_rate 1e-4 (lm_tiny.py's fine-tune) / 1e-5 (under-trained), a chain knob in one
  compile. start_from = fresh (from scratch) vs previous (fine-tune) is the other budget switch:
  --config.model.start_from='("previous", "fresh")' (static, doubles the groups).
Main metric ppl_real_test, with rare_token_mass and distinct_2 (the tails of the text).

Launch:  python -m experiments.main --config=experiments/configs/error_sources_lm.py --workdir=/tmp/es_lm
Full size (4 static groups x 2 learning rates x 2 seeds x 6 fits, one 5-beam decoding of M prompts per fit): measured
91 min wall on the shared 2-core CPU at load 4-6 (2026-12-02), of which 20 min pretrained the two base models once
(cached afterwards); a generation took ~1 min at M = 256 and 2.5-6 min at M = 1024. Results: notes/error_sources.md
(test perplexity 64 -> 797 in 5 generations with every switch off; the 10x smaller learning rate holds it at 89; one
layer 414; M makes no measurable difference at this fixed budget). On an accelerator set --config.model.dtype=bfloat16.
CI-sized variant (random init, 16 / 64 blocks, 2 generations, 8 chains): measured 22 min 42 s wall (9 min 10 s CPU)
on the shared 2-core CPU under heavy load from other jobs, ~3.5 min per group, nearly all of it compiling; not
seconds. A smoke test of the plumbing only: from a random init the test perplexity stays near the vocabulary size
(933-1048 at generation 2), so it shows no science:
  --config.model.pretrain_epochs=0 --config.model.max_train_blocks=64 --config.model.max_test_blocks=32
  --config.samples_per_generation='(16, 64)' --config.model.steps_per_generation=4 --config.num_generations=2
  --config.seeds=1 --config.model.num_beams=2 --config.model.num_sample_texts=0 --config.make_plots=False
"""

import ml_collections

from experiments.configs import common, lm_tiny


def get_config() -> ml_collections.ConfigDict:
    config = lm_tiny.get_config()
    # lm_tiny.py's 2 seeds and 5 generations; the real set: the first 1024 training blocks.
    config.model.max_train_blocks = 1024
    # Statistical error: M = a quarter of the real set / all of it, at a fixed step budget (a static sweep field).
    config.samples_per_generation = (256, 1024)
    config.model.steps_per_generation = 64
    config.regime.name = "replace"
    config.regime.real_fraction = 0.0
    # Expressivity: lm_tiny.py's 2 layers / 1 layer (static: one compile and one cached base model per depth).
    config.model.num_layers = (2, 1)
    # Approximation: lm_tiny.py's fine-tuning rate / 10x smaller over the same 64 steps (a chain knob).
    config.model.learning_rate = (1e-4, 1e-5)
    config.model.num_sample_texts = 0
    config.report.metrics = ("ppl_real_test", "rare_token_mass", "distinct_2")
    return common.finish(config)
