"""Model families, one module each; `base.make_model(config)` finds a family by `config.model.name`."""
