"""Sensors and automation that drive the assets; assets never import this package."""
