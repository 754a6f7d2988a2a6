"""The code location's declared datasets: one folder each, with its ``defs.yaml`` and Soda contract."""
