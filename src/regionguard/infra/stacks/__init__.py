"""One stack per concern, instantiated per region from the topology (no copy-pasted stacks)."""
