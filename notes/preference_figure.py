"""Figure of notes/literature.md's preference section: the fitted mean (reward) and trace_ratio (diversity) per
generation, median over chains, one line per beta; replace and accumulate side by side, with the K -> infinity law
mu_g = g beta (1 - 1/K) s^2 dashed (s^2 = 1).

Usage: python notes/preference_figure.py /tmp/preference notes/figures/preference_reward_diversity.png
"""

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from collapse_jax.analysis import results


def main(workdir: str, out: str) -> None:
    run = results.load(workdir)
    candidates = run.config["curation"]["candidates"]
    fig, axes = plt.subplots(2, 2, figsize=(10, 6), sharex=True, sharey="row")
    colors = {}
    for knobs, chains in run.knob_groups():
        column = 0 if knobs["regime"] == "replace" else 1
        beta = float(knobs["reward_scale"])
        color = colors.setdefault(beta, f"C{len(colors)}")
        # The signed mean: mean_reward / beta is the kept mean (generation >= 1); |mu| from mean_sq_error for beta 0.
        mean = np.sqrt(run.metrics["mean_sq_error"][chains])
        axes[0, column].plot(run.generations, np.median(mean, axis=0), color=color, label=f"beta = {beta:g}")
        axes[0, column].plot(
            run.generations, run.generations * beta * (1 - 1 / candidates), color=color, linestyle="--", linewidth=1
        )
        axes[1, column].plot(run.generations, np.median(run.metrics["trace_ratio"][chains], axis=0), color=color)
        axes[0, column].set_title(knobs["regime"])
    axes[0, 0].set_ylabel("|fitted mean| (reward / beta)")
    axes[1, 0].set_ylabel("trace_ratio (diversity)")
    for ax in axes[1]:
        ax.set_xlabel("generation")
    axes[0, 1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    fig.savefig(out, dpi=100)


if __name__ == "__main__":
    main(*sys.argv[1:3])
