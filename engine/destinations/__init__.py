"""Destinations: one module per vendor, plus the catalogue of known types."""
