"""The failover engine: detector, plans, executor, journal, guard. Never imports providers."""
