"""Final test accuracy vs generator error p per verifier strength psi, against Feng et al.'s p* = 1/(1 + psi/phi).

Usage: python notes/verifier_figure.py /tmp/verifier_run notes/verifier_final_accuracy.png  (prints markdown tables)
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.optimize import brentq  # noqa: E402
from scipy.stats import norm  # noqa: E402

from collapse_jax import results as results_module  # noqa: E402
from collapse_jax.models import gaussian_classifier  # noqa: E402


def predicted_breakdown(labeller: str, keep_bad: float, real_fraction: float, signal: float, size: int) -> float:
    """The p where the expected refit projection crosses 0, one generation from an aligned large-sample model.

    Real points (R = rho M, label error 0) join K = min(M - R, M E[keep]) kept candidates, so the expected centroid
    projection is (R + K x) / (R + K) with x = expected_verified_refit(...) (margin ~ signal: w ~ mu at large M).
    """
    real = np.floor(real_fraction * size + 1e-6)

    def projection(flip: float) -> float:
        if labeller == "noisy_truth":
            error = flip
        else:
            model_error = norm.cdf(-signal)
            error = model_error + flip * (1 - 2 * model_error)
        kept = min(size - real, size * ((1 - error) + error * keep_bad))
        synthetic = float(gaussian_classifier.expected_verified_refit(signal, signal, flip, 1.0, keep_bad, labeller))
        return (real + kept * synthetic) / (real + kept)

    if projection(0.999) > 0:  # enough real data: the expected refit stays aligned for every p
        return float("nan")
    return brentq(projection, 0.01, 0.999)


def main(workdir: str, path: str) -> None:
    res = results_module.load(workdir)
    accuracy, knobs = res.metrics["test_accuracy"], res.knobs
    final = accuracy.shape[1] - 1
    flips = np.unique(knobs["generator_error"])
    figure, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True, sharey=True)
    for row, labeller in enumerate(("noisy_truth", "current_model")):
        for column, rho in enumerate(np.unique(knobs["real_fraction"])):
            axis = axes[row, column]
            print(f"\n### labeller={labeller}, real_fraction={rho:g}: mean final test_accuracy (generation {final})")
            print("| psi | p* | predicted breakdown | " + " | ".join(f"{p:.2f}" for p in flips) + " |")
            print("|---" * (len(flips) + 3) + "|")
            for keep_bad in np.unique(knobs["keep_bad"]):
                chosen = (
                    (knobs["labeller"] == labeller)
                    & np.isclose(knobs["real_fraction"], rho)
                    & np.isclose(knobs["keep_bad"], keep_bad)
                )
                by_flip = [chosen & np.isclose(knobs["generator_error"], p) for p in flips]
                means = np.asarray([accuracy[mask, final].mean() for mask in by_flip])
                before = np.asarray([accuracy[mask, final - 1].mean() for mask in by_flip])
                p_star = float(gaussian_classifier.breakdown_error_rate(1.0, keep_bad))
                predicted = predicted_breakdown(labeller, keep_bad, rho, 2.0, 200)
                (line,) = axis.plot(flips, means, marker="o", label=f"psi={keep_bad:g} (p*={p_star:.3f})")
                if labeller == "current_model":
                    axis.plot(flips, before, marker=".", linestyle=":", color=line.get_color())
                axis.axvline(p_star, color=line.get_color(), linestyle="--", alpha=0.6)
                if np.isfinite(predicted):
                    axis.plot([predicted], [0.5], marker="x", markersize=9, color=line.get_color())
                cells = " | ".join(
                    f"{m:.2f}" + (f" ({b:.2f})" if labeller == "current_model" else "") for m, b in zip(means, before)
                )
                print(f"| {keep_bad:g} | {p_star:.3f} | {predicted:.3f} | {cells} |")
            axis.axhline(0.5, color="gray", linewidth=0.8)
            axis.set_title(f"{labeller}, real_fraction={rho:g}", fontsize=9)
            axis.grid(alpha=0.3)
            if row == 1:
                axis.set_xlabel("generator_error p (label flip probability)")
            if column == 0:
                axis.set_ylabel("test_accuracy, mean over seeds")
            axis.legend(fontsize=7, loc="lower left")
    figure.suptitle(
        f"Feng et al. verifier (phi = 1): accuracy at generation {final} (solid; dotted: {final - 1}); dashed: p*; "
        "x: predicted one-generation breakdown",
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
