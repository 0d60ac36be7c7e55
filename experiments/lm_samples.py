"""Decode a language-model run's saved sample texts to <workdir>/samples.md and draw the generated-text perplexity
histogram (Shumailov et al. Fig. 1b/c) to <workdir>/plots/ppl_generated_gen0_histogram.png.

python -m experiments.lm_samples --workdir=/tmp/lm_tiny [--max_chains=4]
"""

import sys

from absl import app, flags

from collapse_jax.analysis import results
from collapse_jax.analysis.lm_report import write_lm_report

_WORKDIR = flags.DEFINE_string("workdir", None, "A language-model run's workdir (finished or partial).")
_MAX_CHAINS = flags.DEFINE_integer("max_chains", None, "Decode texts of the first this many chains (default: all).")
flags.mark_flags_as_required(["workdir"])


def main(argv: list[str]) -> None:
    del argv
    try:
        loaded = results.load(_WORKDIR.value)
        if loaded.config["model"]["name"] != "lm":
            raise ValueError(f"--workdir: {_WORKDIR.value} is a {loaded.config['model']['name']!r} run, not an lm run")
        plot, samples = write_lm_report(_WORKDIR.value, loaded, _MAX_CHAINS.value)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print(plot)
    if samples:
        print(samples)


if __name__ == "__main__":
    app.run(main)
