"""Draw image grids (one PNG per artifact per knob group: rows = generations, columns = images) of a run's workdir.

python -m experiments.vae_grids --workdir=/tmp/vae_digits   (needs config.model.preview_images > 0, the default)
"""

import sys

from absl import app, flags

from collapse_jax.analysis import image_grids

_WORKDIR = flags.DEFINE_string("workdir", None, "A run's workdir.")
_NAMES = flags.DEFINE_list(
    "artifacts", ["sample_images", "decoded_means"], "Image artifacts [k, H, W] that evaluate returned."
)
_MAX_ROWS = flags.DEFINE_integer("max_rows", image_grids.MAX_ROWS, "At most this many generations (evenly spaced).")
flags.mark_flags_as_required(["workdir"])


def main(argv: list[str]) -> None:
    del argv
    try:
        paths = [
            p for name in _NAMES.value for p in image_grids.write_sample_grids(_WORKDIR.value, name, _MAX_ROWS.value)
        ]
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print("\n".join(paths))


if __name__ == "__main__":
    app.run(main)
