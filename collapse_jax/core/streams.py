"""Every random sub-stream id of the library in one table: a purpose's key is fold_in(parent key, its id).

A chain's bits depend only on (root seed, seed, stream, generation): new purposes take a new id here, so turning a
feature on never moves the draws of the others. Ids need only be distinct within one parent key (tests/test_streams.py).
"""

# Off a chain's key fold_in(key(root_seed), seed).
GENERATION = 0  # then fold_in(., generation): everything a generation draws (fit, sample, mixing)
REAL_DATA = 1  # the chain's original real training set: the same in every generation and every regime
# A family's own streams off the chain key. A family may not import the core, so it keeps its copy of the id; this
# entry reserves it (tests/test_streams.py checks the two agree). The largest int32, far from the engine's small ids.
LINEAR_REGRESSION_DESIGN = 2**31 - 1  # models/linear_regression.py: the chain's fixed design X

# Off a generation's batch key (the key the regime assembles the training pool with).
INFLOW = 1  # new real points from the truth (regime.real_inflow)
CURATION = 7  # the curation stage's decisions

# The ids of each parent key: a new id joins its parent's table here, where a clash is a test failure.
CHAIN_KEY_STREAMS = {
    "GENERATION": GENERATION,
    "REAL_DATA": REAL_DATA,
    "LINEAR_REGRESSION_DESIGN": LINEAR_REGRESSION_DESIGN,
}
BATCH_KEY_STREAMS = {"INFLOW": INFLOW, "CURATION": CURATION}
