"""Figures of notes/literature.md's "Data supply and tails" section: each measured curve beside its derived law.

Usage: PYTHONPATH=. python notes/supply_figures.py {tails|strong|contamination|growth} WORKDIR OUT.png
"""

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from collapse_jax.analysis import results
from collapse_jax.core import supply
from collapse_jax.models import discrete, linear_regression


def tails(run, ax_row) -> None:
    """Mean unseen_truth_mass after one generation vs M, one line per k, with Σ p0 (1 - q)^M dashed."""
    num_outcomes = run.config["model"]["num_outcomes"]
    betas = np.unique(run.knobs["zipf_exponent"])
    for ax, beta in zip(ax_row, betas):
        for index, k in enumerate(np.unique(run.knobs["top_k"])):
            sizes = np.unique(run.knobs["samples_per_generation"])
            median, law = [], []
            truth = np.asarray(discrete.truth_probabilities(num_outcomes, np.float32(beta)), np.float64)
            generator = np.asarray(discrete.decode(truth.astype(np.float32), {"top_k": float(k)}), np.float64)
            for size in sizes:
                chains = (run.knobs["top_k"] == k) & (run.knobs["zipf_exponent"] == beta)
                chains &= run.knobs["samples_per_generation"] == size
                median.append(run.metrics["unseen_truth_mass"][chains, 1].mean())
                law.append(discrete.expected_unseen_mass(truth, generator, int(size)))
            color = f"C{index}"
            ax.loglog(sizes, median, "o-", color=color, label=f"k = {int(k)}")
            ax.loglog(sizes, law, "--", color=color, linewidth=1)
            floor = discrete.zipf_mass_beyond_rank(num_outcomes, beta, int(k))
            if floor > 0:
                ax.axhline(floor, color=color, linestyle=":", linewidth=1)
        ax.set_title(f"Zipf β = {beta:g}, K = {num_outcomes}: dashed Σ p0 (1-q)^M, dotted cut mass")
        ax.set_xlabel("M (synthetic training points)")
    ax_row[0].set_ylabel("test error: truth mass never produced")
    ax_row[-1].legend()


def strong(run, ax_row) -> None:
    """Mean test_mse at generation 1 vs N, one line per synthetic share p, with the derived law dashed."""
    model = run.config["model"]
    ax = ax_row[0]
    sizes = np.unique(run.knobs["samples_per_generation"])
    for index, real in enumerate(np.unique(run.knobs["real_fraction"])[::-1]):
        share = 1 - real
        mean = []
        for size in sizes:
            chains = np.isclose(run.knobs["real_fraction"], real) & (run.knobs["samples_per_generation"] == size)
            mean.append(run.metrics["test_mse"][chains, 1].mean())
        law = [
            linear_regression.strong_collapse_error(
                model["dim"], model["noise_std"], model["real_data_size"], int(n), share
            )
            for n in sizes
        ]
        color = f"C{index}"
        ax.loglog(sizes, mean, "o-", color=color, label=f"p = {share:.1f}")
        ax.loglog(sizes, law, "--", color=color, linewidth=1)
    ax.set_xlabel("N (training points, share p synthetic)")
    ax.set_ylabel("mean ‖ŵ - w*‖² (dashed: derived law)")
    ax.set_title(f"strong collapse: d = {model['dim']}, generator on n0 = {model['real_data_size']} real points")
    ax.legend()


def contamination(run, ax_row) -> None:
    """Mean error of the pooled mean vs t per a = M / (M + n), the exact recursion dashed; right: V_t t (n + M)."""
    synthetic = run.config["samples_per_generation"]
    initial = run.config["model"]["real_data_size"] or synthetic
    t = run.generations[1:]
    for index, inflow in enumerate(np.unique(run.knobs["real_inflow"])[::-1]):
        share = synthetic / (synthetic + inflow)
        measured = run.metrics["mean_sq_error"][run.knobs["real_inflow"] == inflow].mean(axis=0)[1:]
        law = supply.oblivious_mean_variance(initial, int(inflow), synthetic, int(t[-1]), 1.0)[1:]
        color = f"C{index}"
        ax_row[0].loglog(t, measured, color=color, label=f"a = {share:.2f} (n = {int(inflow)})")
        ax_row[0].loglog(t, law, "--", color=color, linewidth=1)
        ax_row[1].semilogx(t, measured * t * (synthetic + inflow), color=color)
        ax_row[1].semilogx(t, law * t * (synthetic + inflow), "--", color=color, linewidth=1)
        if share < 0.5:
            ax_row[1].axhline(1 / (1 - 2 * share), color=color, linestyle=":", linewidth=1)
    ax_row[0].set_ylabel("mean (μ_t - μ)² (dashed: exact recursion)")
    ax_row[1].set_ylabel("V_t · t (n + M)  (dotted: 1 / (1 - 2a))")
    ax_row[1].set_ylim(0, 12)
    for ax in ax_row:
        ax.set_xlabel("generation t")
    ax_row[0].set_title(f"oblivious contamination, M = {synthetic}, σ² = 1 known")
    ax_row[0].legend()


def growth(run, ax_row) -> None:
    """trace_ratio vs t per growth exponent s: mean (solid), median (dotted), the law Π (1 - 1/n_j) dashed."""
    base = run.config["samples_per_generation"]
    t = run.generations
    for index, exponent in enumerate(np.unique(run.knobs["samples_growth"])):
        ratio = run.metrics["trace_ratio"][run.knobs["samples_growth"] == exponent]
        law = np.cumprod(1 - 1 / np.ceil(base * (1.0 + t) ** exponent))
        color = f"C{index}"
        ax_row[0].plot(t, ratio.mean(axis=0), color=color, label=f"s = {exponent:g}")
        ax_row[0].plot(t, np.median(ratio, axis=0), ":", color=color)
        ax_row[0].plot(t, law, "--", color=color, linewidth=1)
    ax_row[0].set_xlabel("generation t")
    ax_row[0].set_ylabel("σ_t² / σ² (mean solid, median dotted, Π(1 - 1/n_j) dashed)")
    ax_row[0].set_title(f"n_t = ceil({base} (1 + t)^s), Gaussian MLE, replace")
    ax_row[0].legend()


def main(kind: str, workdir: str, out: str) -> None:
    run = results.load(workdir)
    panels = {"tails": (tails, 2), "strong": (strong, 1), "contamination": (contamination, 2), "growth": (growth, 1)}
    draw, columns = panels[kind]
    fig, axes = plt.subplots(1, columns, figsize=(6 * columns, 4.5), squeeze=False)
    draw(run, axes[0])
    fig.tight_layout()
    fig.savefig(out, dpi=100)


if __name__ == "__main__":
    main(*sys.argv[1:4])
