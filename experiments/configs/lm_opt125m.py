"""Shumailov et al. (Nature 2024) language-model collapse at OPT-125m scale, for an accelerator.

64-token blocks, 5-beam continuations with repetition penalty 3.0 (the paper's code), AdamW + cosine to 1e-6, 5 epochs
per generation without real data vs 10% real data, generations 0-9, 5 seeds. With `hf_checkpoint` pointing at a local
facebook/opt-125m directory (config.json, model.safetensors, vocab.json, merges.txt) this is the paper's setup on the
corpus you give (corpus_dir: a folder of WikiText-2 .txt files for the exact one); without it, the same 12 x 768
network is first pretrained on the corpus' training split (cached), so perplexities are not the paper's.

Launch:  python -m experiments.main --config=experiments/configs/lm_opt125m.py --workdir=/tmp/lm_opt125m \
           --config.model.hf_checkpoint=/path/to/opt-125m --config.model.corpus_dir=/path/to/wikitext2_txt
Runtime: not measured yet (no accelerator in this session); budget hours per seed on one GPU (beam decoding of every
training block dominates).
"""

from experiments.configs import common, lm_tiny


def get_config():
    config = lm_tiny.get_config()
    # Shumailov's 5 seeds, generations 0-9.
    config.seeds = 5
    config.num_generations = 9
    # M = every training block (None-like 0 below keeps them all); set to the corpus' block count.
    config.samples_per_generation = 22_860  # Shakespeare train split at L = 64 with the 4096 BPE (measured)
    config.regime.name = ["replace"]

    model = config.model
    # OPT-125m shape (ignored when hf_checkpoint is set: the checkpoint's config.json wins).
    model.num_layers = 12
    model.hidden_size = 768
    model.num_heads = 12
    model.mlp_size = 3072
    model.activation = "relu"
    model.dtype = "bfloat16"
    # Shumailov: 64-token blocks, continued by 64 tokens.
    model.block_length = 64
    model.vocab_size = 4096
    model.max_train_blocks = 0  # 0: all training blocks
    model.max_test_blocks = 0
    # Local Hugging Face OPT directory (None: the base model is pretrained below on the corpus' training split).
    model.hf_checkpoint = None
    # Without a checkpoint: pretrain the 12 x 768 network for 3 epochs at OPT-125m's peak learning rate (Zhang et al.
    # 2022: 6e-4), cached under data_dir; ignored when hf_checkpoint is set.
    model.pretrain_epochs = 3
    model.pretrain_batch_size = 32
    model.pretrain_learning_rate = 6e-4
    # 5 epochs per generation (Shumailov's no-real-data setting; use 10 with real_fraction 0.1 to match the paper).
    model.epochs = 5
    model.batch_size = 32
    model.learning_rate = 5e-5
    model.warmup_fraction = 0.0
    # Fine-tune the previous generation (Shumailov); generation 0 starts from the pretrained checkpoint.
    model.start_from = "previous"
    model.decoding = "beam"
    model.num_beams = 5
    model.repetition_penalty = 3.0
    # Accelerator memory: 64 prompts x 5 beams of cache per decode step.
    model.decode_batch_size = 64
    model.eval_batch_size = 64

    # One chain per vmapped block: an OPT-125m chain (weights + gen-0 copy + AdamW state) is ~2 GB in float32.
    config.chain_block = 1
    return common.finish(config)
