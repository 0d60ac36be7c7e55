"""Curation of a language model's generated text (on Shumailov et al.'s LM loop): likelihood filter, verifier.

Setting: experiments/configs/lm_tiny.py (a 2-layer decoder pretrained on Shakespeare, fine-tuned each generation on
5-beam continuations of the 256 real prompts, as in Shumailov et al. 2024's OPT-125m experiment), replace with no real
data, 5 generations. Between generating and fine-tuning, one curation stage per static group:
- none: the paper's loop;
- likelihood_filter: rank the M continuations by log p(block) under the model that wrote them and keep a quantile band,
  (0.1, 1) = drop the 10% least likely (a perplexity quality filter), (0, 0.9) = drop the 10% most likely;
- verifier: keep a block whose log-perplexity under the pretrained base model is within the 95% quantile of held-out
  real text (model_setup.quality_threshold) always, and a worse one w.p. keep_bad.
Question: does filtering the model's own text by likelihood or by a quality oracle change how fast test perplexity
degrades and how much the generated text narrows (ppl_generated_gen0 quantiles, distinct_2, rare_token_mass)?

Baseline in the same run: curation none (the paper's loop), a static group beside each operator.
Launch:  python -m experiments.main --config=experiments/configs/mitigation_curation_lm.py --workdir=/tmp/curation_lm
Runtime: 4 min 05 s on an idle 2-core CPU (3 groups, 16 chains x 6 fits; + ~1 min once for the base model if
lm_tiny has not cached it). Final test perplexity: none 161, likelihood bands 160 / 162, verifier 118
(notes/lm_curation.md).
"""

import ml_collections

from experiments.configs import common, lm_tiny


def get_config() -> ml_collections.ConfigDict:
    config = lm_tiny.get_config()
    # Replace only: each generation fine-tunes on its own curated continuations.
    config.regime.name = "replace"
    # rho: no real blocks, so the curation stage is the only thing between the model and its own output.
    config.regime.real_fraction = 0.0
    # Independent seeds per curation setting (lm_tiny: 2).
    config.seeds = 4

    # none | likelihood_filter | verifier: one compiled group each (their knobs swept inside).
    config.curation.name = ("none", "likelihood_filter", "verifier")
    # likelihood_filter: (low, high) quantile bands of the continuations' log-likelihood kept (a tuple of pairs sweeps).
    config.curation.keep_quantiles = ((0.1, 1.0), (0.0, 0.9))
    # verifier: keep rate of good blocks (phi) and of bad ones (psi).
    config.curation.keep_good = 1.0
    config.curation.keep_bad = 0.0

    # Strength figures for the final test perplexity and the generated text's perplexity under generation 0.
    config.report.metrics = ("ppl_real_test", "ppl_generated_gen0_q50")
    return common.finish(config)
