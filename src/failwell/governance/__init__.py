"""Governance: projects, stage gates, reviews, model cards and datasheets, PIR."""
