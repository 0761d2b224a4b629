"""The knowledge base of blameless postmortems (so far: the blameless-language check)."""
