"""Host-side views of a language-model run's workdir: saved sample texts decoded per generation, and Shumailov et al.'s
per-sequence perplexity histogram of generated text (scored by the generation-0 model) across generations.
"""

from __future__ import annotations

import os
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless machines and clusters have no display
import matplotlib.pyplot as plt  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402

from collapse_jax.analysis.results import Results  # noqa: E402
from collapse_jax.store import artifacts  # noqa: E402

HISTOGRAM_PREFIX = "ppl_generated_gen0_hist_"


def _labels(results: Results, index: int) -> str:
    names = [name for name in results.group_fields if name in results.knobs] + ["seed"]
    return ", ".join(f"{name}={results.knobs[name][index]}" for name in names)


def sample_texts(workdir: str, results: Results, max_chains: int | None = None) -> list[str]:
    """Markdown: per chain, each saved text's prompt (when known) and its continuation at every saved generation."""
    from collapse_jax.data.text_corpus import model_corpus  # the corpus (and tokenizer) the run's config names

    model = ml_collections.ConfigDict(results.config["model"])
    corpus = model_corpus(model)
    prompts = corpus.blocks["train"][: model.max_train_blocks or None]
    # Text i continues training block i only when every block is continued once (M = real data size).
    fixed_prompts = model.protocol == "block_continuation" and results.config["samples_per_generation"] == len(prompts)
    generations, texts = [], []
    for generation in range(results.config["num_generations"] + 1):
        try:
            chain_ids, tokens = artifacts.load(workdir, "sample_tokens", generation)
        except FileNotFoundError:
            break  # an unfinished run: later generations are not written yet
        order = {int(chain): row for row, chain in enumerate(chain_ids)}
        generations.append(generation)
        texts.append({chain: tokens[row] for chain, row in order.items()})
    if not texts:
        raise FileNotFoundError(f"{workdir}: no sample_tokens artifacts (config.model.num_sample_texts = 0?)")
    lines = [f"# Generated text per generation ({model.protocol}, decoding={model.decoding})", ""]
    for index, chain in enumerate(results.chain_ids[:max_chains]):
        lines += [f"## Chain {chain}: {_labels(results, index)}", ""]
        for text in range(texts[0][int(chain)].shape[0]):
            prompt = corpus.tokenizer.decode(prompts[text]) if fixed_prompts else "(a random training block)"
            lines += [f"### Text {text}", "", f"- prompt: {prompt!r}"]
            lines += [
                f"- generation {g}: {corpus.tokenizer.decode(t[int(chain)][text])!r}"
                for g, t in zip(generations, texts)
            ]
            lines.append("")
    return lines


def histogram_edges(model: Any) -> np.ndarray:
    """Perplexity bin edges of the `ppl_generated_gen0_hist_*` metrics (the model's log-spaced bins on [1, max])."""
    return np.exp(np.linspace(0.0, np.log(model["histogram_max_perplexity"]), model["histogram_bins"] + 1))


def plot_perplexity_histograms(results: Results, path: str) -> None:
    """One panel per knob group: share of generated blocks per perplexity bin, one line per generation.

    Shumailov et al. (Nature 2024, Fig. 1b/c): later generations put more mass at low perplexity (text the
    generation-0 model finds likely) and grow a long high-perplexity tail. Counts are pooled over the group's seeds.
    """
    edges = histogram_edges(results.config["model"])
    names = sorted(name for name in results.metrics if name.startswith(HISTOGRAM_PREFIX))
    counts = np.stack([results.metrics[name] for name in names], axis=-1)  # [chains, generations, bins]
    groups = results.knob_groups()
    figure, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.6), sharey=True, squeeze=False)
    colors = plt.get_cmap("viridis")
    for axis, (labels, indices) in zip(axes[0], groups):
        pooled = np.nansum(counts[indices][~results.failed[indices]], axis=0)  # [generations, bins]
        computed = [g for g in range(pooled.shape[0]) if pooled[g].sum() > 0]
        for g in computed:
            share = pooled[g] / pooled[g].sum()
            color = colors(g / max(pooled.shape[0] - 1, 1))
            axis.stairs(share, edges, color=color, label=f"gen {results.generations[g]}", linewidth=1.4)
        axis.set_xscale("log")
        axis.set_xlabel("perplexity under the generation-0 model")
        axis.set_title(", ".join(f"{k}={v}" for k, v in labels.items()) or "all chains", fontsize=9)
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("share of generated blocks")
    axes[0][-1].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_lm_report(workdir: str, results: Results, max_chains: int | None = None) -> tuple[str, str | None]:
    """<workdir>/plots/ppl_generated_gen0_histogram.png and <workdir>/samples.md (when texts were saved)."""
    os.makedirs(os.path.join(workdir, "plots"), exist_ok=True)
    plot_path = os.path.join(workdir, "plots", "ppl_generated_gen0_histogram.png")
    plot_perplexity_histograms(results, plot_path)
    if not results.config["model"].get("num_sample_texts"):
        return plot_path, None
    samples_path = os.path.join(workdir, "samples.md")
    with open(samples_path, "w") as handle:
        handle.write("\n".join(sample_texts(workdir, results, max_chains)) + "\n")
    return plot_path, samples_path
