"""LLM application failure probes: reversal curse, sycophancy, grounding."""
