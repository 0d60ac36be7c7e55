"""Verification against collapse: a centroid classifier retrained on noisily labelled data that an oracle curates.

Reproduces the breakdown point of Feng et al. (2024, "Beyond Model Collapse: Scaling Up with Synthesized Data Requires
Verification"): a verifier keeping correct labels w.p. phi and wrong ones w.p. psi turns label-error rate p into
p' = p psi / (p psi + (1 - p) phi), and the retrained classifier stays aligned with the truth iff
p < p* = 1/(1 + psi/phi).
Sweep: generator_error p in 0.05..0.95 x psi in (0.1, 0.3, 1.0) (p* = 0.909, 0.769, 0.5) x real fraction (0, 0.1) x
16 seeds, for both labellers (the chain's current model, or Feng's external generator with x-independent errors).
Past the breakdown, current_model chains flip sign every generation (two label flips with p > 1/2 undo each other):
compare generations 9 and 10; noisy_truth chains stay broken.

Baseline in the same run: psi = 1 with phi = 1 keeps every label (no verification).
Launch:  python -m experiments.main --config=experiments/configs/mitigation_verifier.py --workdir=/tmp/verifier_run
Runtime: 79 s wall on a shared 2-core CPU (2 static groups x 1824 chains x 10 generations: ~22 s each, mostly
compile; report plots ~30 s). Figure + p* table: python notes/verifier_figure.py /tmp/verifier_run out.png
Override any field: --config.curation.keep_bad=0.5 --config.model.signal=1.0 --config.seeds=64
"""

import ml_collections

from experiments.configs import common

# p = 0.05, 0.10, ..., 0.95.
GENERATOR_ERRORS = tuple(round(0.05 * i, 2) for i in range(1, 20))


def get_config() -> ml_collections.ConfigDict:
    config = common.get_config()
    config.seeds = 16
    config.num_generations = 10
    # M: labelled points each generation trains on (and synthetic candidates the generator labels).
    config.samples_per_generation = 200

    # rho: share of each generation's M points that is real, correctly labelled data (a tuple sweeps it per chain).
    config.regime.real_fraction = (0.0, 0.1)

    # Model family: a module in collapse_jax/models/.
    config.model.name = "gaussian_classifier"
    # d: input dimension; the truth is y = +-1 equiprobable, x = y mu + N(0, I_d) with mu = (signal, 0, ..., 0).
    config.model.dim = 10
    # |mu|: Bayes accuracy Phi(2) = 0.977, so the generating model's own label errors (~2.3%) stay small next to p.
    config.model.signal = 2.0
    # current_model: labels sign(w_g . x) of the chain's latest fit, then flipped w.p. p (self-labelling);
    # noisy_truth: the true class flipped w.p. p (Feng et al.'s external generator). A tuple compiles one group each.
    config.model.labeller = ("current_model", "noisy_truth")
    # p: probability that the generator flips each label (a tuple sweeps it inside one compile).
    config.model.generator_error = GENERATOR_ERRORS
    # Size of the real training set at generation 0 (None: M).
    config.model.real_data_size = None

    # Feng et al.'s oracle verifier: keep a correctly labelled sample w.p. keep_good, a wrongly labelled one w.p.
    # keep_bad (model.is_good judges the label against the class that generated x).
    config.curation.name = "verifier"
    # phi: keep rate of correct labels.
    config.curation.keep_good = 1.0
    # psi: keep rate of wrong labels (a tuple sweeps it per chain); p* = 1/(1 + psi/phi) = 0.909, 0.769, 0.5.
    config.curation.keep_bad = (0.1, 0.3, 1.0)

    config.chain_block = 256

    # The breakdown figure: final test_accuracy vs p, one line per (psi, rho, labeller); accuracy falls as p grows.
    config.report.metrics = ("test_accuracy",)
    config.report.knobs = ("generator_error",)
    config.report.directions = {"generator_error": "lower_is_safer"}
    # Feng et al.'s breakdown p* = 1/(1 + psi/phi) for phi = 1 and each swept psi, drawn as dashed lines.
    config.report.reference_lines = tuple(
        ("generator_error", 1.0 / (1.0 + psi), f"p* (psi={psi:g})") for psi in config.curation.keep_bad
    )
    return common.finish(config)
