"""Destination types: one module per vendor, and the catalog of those Sluice delivers to."""
