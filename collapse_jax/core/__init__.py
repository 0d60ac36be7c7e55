"""The compiled core: the engine (jit(shard_map(lax.map(vmap(scan))))), the regimes' pool update, the real-data
supply and the curation stage. It imports the family contract (models.base), never the host or a family."""
