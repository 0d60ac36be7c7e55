"""Package definition for collapse_jax: model-collapse simulation with many chains in one compiled JAX program."""

from setuptools import find_packages, setup

setup(
    name="collapse_jax",
    version="0.1.0",
    description="Simulate model collapse (self-consuming training loops) for many chains at once in JAX.",
    python_requires=">=3.10",
    packages=find_packages(include=["collapse_jax*", "experiments*", "launch*", "benchmarks*"]),
    install_requires=[
        "jax>=0.7",
        "flax>=0.11",
        "optax>=0.2.5",
        "orbax-checkpoint>=0.11",
        "tensorflow-datasets>=4.9.9",
        "numpy>=1.26",
        "absl-py>=2.1",
        "ml-collections>=1.0",
        # tfds imports it on Python 3.11 without declaring it.
        "importlib_resources>=6.0",
        "matplotlib>=3.8",
        "tokenizers>=0.20",  # byte-level BPE of the language-model corpus (collapse_jax/data/tokenizer.py)
    ],
    extras_require={
        # scikit-learn is a reference implementation in tests (and the source of the bundled 8x8 digits data set).
        # pytest-xdist: `make test` runs two workers (a 2-core CI machine).
        "test": [
            "pytest>=8",
            "pytest-xdist>=3.5",
            "scikit-learn>=1.4",
            "scipy>=1.11",
            "ruff>=0.6",
            "tensorboardX>=2.6",
        ],
        # Live TensorBoard summaries of running sweeps (collapse_jax/monitoring.py; tensorboardX needs no TensorFlow).
        "monitor": ["tensorboardX>=2.6"],
        # The same writer plus the TensorBoard viewer, to open <workdir>/tensorboard: pip install -e '.[tensorboard]',
        # then tensorboard --logdir <workdir>/tensorboard (it runs without TensorFlow, with a reduced feature set).
        "tensorboard": ["tensorboardX>=2.6", "tensorboard>=2.16"],
        # The CPU VAE config's digits data set ships inside scikit-learn (collapse_jax/data/images.py).
        "digits": ["scikit-learn>=1.4"],
        # Accelerator users: pip install -e .[cuda]  (jax's CUDA 12 wheels).
        "cuda": ["jax[cuda12]"],
        # Tidy tables of results (Results.to_dataframe / to_xarray, examples/analysis.py) and the Parquet table of
        # experiments.report: pip install -e '.[analysis]'.
        "analysis": ["pandas>=2.2", "xarray>=2024.6", "pyarrow>=15"],
        # Local Hugging Face OPT import and its parity test (torch CPU wheel; transformers 5.x).
        "hf": ["safetensors>=0.4", "torch==2.13.0", "transformers>=5,<6"],
    },
)
