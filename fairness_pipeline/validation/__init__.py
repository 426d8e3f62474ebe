"""Validation of raw selection events: one Great Expectations suite that reports and decides quarantine."""
