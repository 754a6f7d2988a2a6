"""Software-defined assets, one module per layer: thin wrappers doing I/O and metadata."""
