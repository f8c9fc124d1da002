"""Sluice's data plane: gateway, job store, pipeline, destinations and workspace config."""
