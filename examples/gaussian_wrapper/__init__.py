"""An outside family with a Gaussian truth that is not named "gaussian": curation asks it for capabilities."""
