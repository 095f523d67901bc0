"""The workload: a small orders service that reads locally and writes to the primary region."""
