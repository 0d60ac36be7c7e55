"""Every random sub-stream id of the core in one table: a purpose's key is fold_in(parent key, its id).

A chain's bits depend only on (root seed, seed, stream, generation): new purposes take a new id here, so turning a
feature on never moves the draws of the others.
"""

# Off a chain's key fold_in(key(root_seed), seed).
GENERATION = 0  # then fold_in(., generation): everything a generation draws (fit, sample, mixing)
REAL_DATA = 1  # the chain's original real training set: the same in every generation and every regime

# Off a generation's batch key (the key the regime assembles the training pool with).
INFLOW = 1  # new real points from the truth (regime.real_inflow)
CURATION = 7  # the curation stage's decisions
