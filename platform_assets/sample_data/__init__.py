"""Rossmann-shaped sample data and the `platform-assets land` command."""
