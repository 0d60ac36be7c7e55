"""Figure of notes/literature.md's selection section: median trace_ratio per generation (10-90% band) for
replace / accumulate, with (alpha = 0.1) and without (alpha = 1.0) selection, at both target offsets.

Usage: python notes/selection_figure.py /tmp/selection notes/figures/selection_trace_ratio.png
"""

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from collapse_jax.analysis import results


def main(workdir: str, out: str) -> None:
    run = results.load(workdir)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for (knobs, chains) in run.knob_groups():
        ax = axes[0 if knobs["target_offset"] == 0.0 else 1]
        ratio = run.metrics["trace_ratio"][chains]
        label = f"{knobs['regime']}, alpha = {knobs['selection_share']:g}"
        line, = ax.plot(run.generations, np.median(ratio, axis=0), label=label)
        low, high = np.percentile(ratio, [10, 90], axis=0)
        ax.fill_between(run.generations, low, high, color=line.get_color(), alpha=0.2)
    for ax, offset in zip(axes, (0.0, 1.0)):
        ax.set_title(f"target offset {offset:g} (true std units)")
        ax.set_xlabel("generation")
        ax.set_ylim(-0.02, 1.3)  # linear, as in Qiao et al.'s figure (replace + selection reaches ~0 by generation 10)
    axes[0].set_ylabel("trace_ratio = Tr(Sigma_t) / Tr(Sigma*)")
    axes[1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    fig.savefig(out, dpi=100)


if __name__ == "__main__":
    main(*sys.argv[1:3])
