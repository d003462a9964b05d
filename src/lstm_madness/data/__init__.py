"""Prices in a database: schema, store, sources (CSV, Yahoo, samples) and validation."""
