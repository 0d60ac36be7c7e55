"""Analysing a sweep with pandas and xarray: the three figures researchers draw most, a few lines each.

Runs a small Gaussian sweep (replace vs accumulate x real fraction x sampling bias, 8 seeds, 100 generations; about
20 s on a 2-core CPU, mostly compile time) into --workdir (default: a new temporary folder; a run or sweep ROOT that
is already there is loaded instead), then draws into --output (default: <workdir>/analysis):
  1. trace ratio vs generation per group: median and 10-90% band over seeds;
  2. final trace ratio vs real fraction, one line per regime;
  3. per-chain trajectories, failed (non-finite) chains marked where they stopped.
Run it:  python -m examples.analysis [--workdir=DIR] [--output=DIR]   (needs: pip install -e '.[analysis]')
or open it as a notebook: Jupytext, VS Code and PyCharm read the `# %%` cells.
"""

# %%
import os
import sys
import tempfile

import matplotlib.pyplot as plt
import numpy as np
from absl import flags

from collapse_jax.analysis import aggregate
from collapse_jax.host import runner
from experiments.configs import gaussian

# absl flags like every entry point, in a FlagValues of their own: a notebook may run this cell twice, and its kernel
# passes arguments of its own (known_only skips them).
FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "workdir", None, "A run or sweep ROOT to load; empty or absent: run the sweep there.", flag_values=FLAGS
)
flags.DEFINE_string("output", None, "Where the PNGs go (default: <workdir>/analysis).", flag_values=FLAGS)
FLAGS(sys.argv, known_only=True)

# %% The sweep: regime is static (one compile each), real fraction and sampling bias are per-chain knobs. lambda = 3
# multiplies the fitted variance by about 3 per generation under replace, so those chains overflow float32 (go
# non-finite, "failed") near generation 85: the third figure marks them.
SWEEP = {
    "regime.name": ("replace", "accumulate"),
    "regime.real_fraction": (0.0, 0.1, 0.3),
    "model.sampling_bias": (1.0, 3.0),
    "samples_per_generation": 20,
    "seeds": 8,
    "num_generations": 100,
    "chunk_generations": 50,
    "chain_block": 48,
    "checkpoint_every": 100,
    "make_plots": False,
    "model.test_size": 1000,
}
workdir = FLAGS.workdir or tempfile.mkdtemp(prefix="collapse_analysis_")
if not os.path.isdir(workdir) or not os.listdir(workdir):
    runner.run(runner.as_config(SWEEP, gaussian.get_config()), workdir)
output = FLAGS.output or os.path.join(workdir, "analysis")
os.makedirs(output, exist_ok=True)

# %% Load: one row per chain x recorded generation, with every knob and label as a column.
run = aggregate.load_workdirs([workdir])  # a run, a sweep ROOT (its shards merge) or a folder of runs
frame = run.to_dataframe(metrics=["trace_ratio"])
TRACE_RATIO = r"trace ratio  $\mathrm{tr}\,\hat\Sigma\,/\,\mathrm{tr}\,\Sigma$"
print(frame.head())
print("groups are keyed by:", run.group_fields)
# Figures 1 and 2 hold the sampling bias at its smallest swept value (lambda = 1 in the sweep above: plain sampling).
BIAS = float(frame.sampling_bias.min())

# %% Figure 1: trace ratio vs generation per group at lambda = BIAS, median and 10-90% band over seeds; one panel per
# regime, one line per real fraction. (Failed chains hold NaN after their failure, which quantile skips.)
bands = (
    frame[frame.sampling_bias == BIAS]
    .groupby(["regime", "real_fraction", "generation"])
    .trace_ratio.quantile([0.1, 0.5, 0.9])
    .unstack()
)
fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
for ax, (regime, by_rho) in zip(axes, bands.groupby(level="regime")):
    for rho, band in by_rho.groupby(level="real_fraction"):
        generation = band.index.get_level_values("generation")
        (line,) = ax.plot(generation, band[0.5], label=f"{rho:g}")
        ax.fill_between(generation, band[0.1], band[0.9], color=line.get_color(), alpha=0.2, lw=0)
    ax.set(yscale="log", xlabel="generation", title=regime)
axes[0].set_ylabel(TRACE_RATIO)
axes[0].legend(title="real fraction ρ")
fig.suptitle(f"Trace ratio: median and 10-90% band over seeds, λ = {BIAS:g}")
fig.savefig(os.path.join(output, "trace_ratio_vs_generation.png"), dpi=120, bbox_inches="tight")

# %% Figure 2: the final generation's trace ratio vs the swept real fraction, one line per regime (lambda = BIAS).
final = run.to_dataframe(metrics=["trace_ratio"], generations=-1)  # -1: the last recorded generation only
curves = final[final.sampling_bias == BIAS].groupby(["regime", "real_fraction"]).trace_ratio.quantile([0.1, 0.5, 0.9])
fig, ax = plt.subplots(figsize=(6, 4.5))
for regime, curve in curves.unstack().groupby(level="regime"):
    rho = curve.index.get_level_values("real_fraction")
    (line,) = ax.plot(rho, curve[0.5], "o-", label=regime)
    ax.fill_between(rho, curve[0.1], curve[0.9], color=line.get_color(), alpha=0.2, lw=0)
ax.set(
    xticks=sorted(final.real_fraction.unique()),
    yscale="log",
    xlabel="real fraction ρ",
    ylabel=f"trace ratio at generation {final.generation.max()}",
    title=f"Final trace ratio: median and 10-90% band, λ = {BIAS:g}",
)
ax.legend(title="regime")
fig.savefig(os.path.join(output, "final_trace_ratio_vs_real_fraction.png"), dpi=120, bbox_inches="tight")

# %% Figure 3 (xarray): every chain of replace with no real data, by sampling bias; a failed chain stops where its fit
# went non-finite, marked x at its last finite value. ds.set_index(chain=[...]).unstack("chain") would give one
# dimension per knob instead.
ds = run.to_xarray(metrics=["trace_ratio"])
chains = ds.isel(chain=((ds.regime == "replace") & (ds.real_fraction == 0.0)).values)
biases = sorted(set(chains.sampling_bias.values.tolist()))  # the legend names the values the run has
colors = {bias: f"C{index}" for index, bias in enumerate(biases)}
fig, ax = plt.subplots(figsize=(7, 4.5))
for index in range(chains.sizes["chain"]):
    chain = chains.isel(chain=index)
    color = colors[float(chain.sampling_bias)]
    ax.plot(chain.generation, chain.trace_ratio, color=color, lw=0.8, alpha=0.7)
    if chain.failed_generation >= 0:
        last = int(np.flatnonzero(np.isfinite(chain.trace_ratio.values))[-1])
        ax.plot(chain.generation[last], chain.trace_ratio[last], "x", color="red", ms=8, mew=2)
failed = int((chains.failed_generation >= 0).sum())
for bias, color in colors.items():
    ax.plot([], [], color=color, label=f"λ = {bias:g}")
ax.plot([], [], "x", color="red", mew=2, label=f"failed (non-finite): {failed} of {chains.sizes['chain']} chains")
ax.set(yscale="log", xlabel="generation", ylabel=TRACE_RATIO, title="Each chain: replace, ρ = 0")
ax.legend(loc="upper left")
fig.savefig(os.path.join(output, "trace_ratio_per_chain.png"), dpi=120, bbox_inches="tight")
print("figures in", output)
