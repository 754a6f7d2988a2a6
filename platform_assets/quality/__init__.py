"""Soda data contracts (soda/contracts/*.yml) as Dagster asset checks, one check per contract check."""
