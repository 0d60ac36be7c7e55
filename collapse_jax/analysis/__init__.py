"""Analysis of stored results: load(workdir), aggregation across shards, breakdowns, plots and reports.
It reads the store and names from the family contract, never the compiled core."""
