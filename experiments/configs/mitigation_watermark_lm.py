"""Watermark filtering against LM collapse: the tiny Shakespeare LM (lm_tiny.py) watermarks its own text with
Kirchenbauer et al.'s (2023) green lists, and a z-test filter drops detected blocks before the next generation trains.

Sweep: curation none vs watermark_filter (static, 2 compiles) x watermark bias delta (0, 2, 4; gamma = 0.25) x real
fraction (0.1, 0.5) x 2 seeds, replace regime, 3 generations of Shumailov et al.'s block continuation (5 beams). Per
generation the results hold the detector's TPR / FPR in each training batch (detected_synthetic_rate /
detected_real_rate, filter groups only), the model's detection metrics on its own samples and on real test text
(watermark_detect_rate_synthetic / _real at z > 4, every group), test perplexity, and the generation-0 model's
perplexity of the generated text (delta's cost in quality). Measured 2026-12-01 (means of 2 seeds, rho = 0.1,
generation 0 -> 3): test perplexity 63 -> 97 without a filter (delta = 0; 90 / 91 with delta = 2 / 4: the watermark
alone does not help), 63 -> 67 with the filter at delta = 2 (detector TPR 0.996 at generation 1, falling to 0.87 at 3:
the filter trains the next model on the text that evaded it), 63 -> 64 at delta = 4 (TPR 1.00); false positive rate 0
on real text throughout. delta costs quality: the generation-0 model's median perplexity of its samples is 105 / 119 /
133 for delta = 0 / 2 / 4. More in notes/watermark.md.

Baseline in the same run: curation none (no filter), a static group beside watermark_filter.
Launch:  python -m experiments.main --config=experiments/configs/mitigation_watermark_lm.py --workdir=/tmp/wm_lm
Runtime: 4 min 15 s on an idle 2-core CPU (2 groups x 12 chains x 4 fits, ~2 min a group), plus ~1 min once for the
base model's pretraining if lm_tiny has not cached it under data_dir.
"""

import ml_collections

from experiments.configs import common, lm_tiny


def get_config() -> ml_collections.ConfigDict:
    config = lm_tiny.get_config()
    config.num_generations = 3
    # Replace: each generation trains on its own batch only (real share rho + the synthetic blocks that survive).
    config.regime.name = "replace"
    # rho: share of each generation's M = 256 blocks that is real; the filter can only remove synthetic slots, so
    # with a perfect detector a generation trains on rho M real blocks alone (a chain knob).
    config.regime.real_fraction = (0.1, 0.5)
    # delta: logit bias of green ids while decoding (0 = no watermark), a chain knob (one compile for all).
    config.model.watermark_bias = (0.0, 2.0, 4.0)
    # gamma: share of the vocabulary on each green list (Kirchenbauer et al.'s default 0.25), static.
    config.model.watermark_gamma = 0.25
    # Secret key of the green-list hash (static; the paper's default 15485863).
    config.model.watermark_key = 15485863

    # none (watermarked text trains the next generation) vs watermark_filter (detected blocks are dropped); static.
    config.curation.name = ("none", "watermark_filter")
    # A block is flagged when z > this over its 31 scored tokens (Kirchenbauer et al. use 4); also the threshold of the
    # model's watermark_detect_rate metrics. Under the null a block needs >= 18 of 31 green ids: P = 9e-5.
    config.curation.watermark_z_threshold = 4.0

    # Figures of the final generation vs delta and rho: test perplexity (collapse), the watermark's detectability in
    # the model's own samples, and the generation-0 model's perplexity of the samples (delta's cost in quality).
    config.report.metrics = ("ppl_real_test", "watermark_detect_rate_synthetic", "ppl_generated_gen0_q50")
    config.report.knobs = ("watermark_bias", "real_fraction")
    return common.finish(config)
