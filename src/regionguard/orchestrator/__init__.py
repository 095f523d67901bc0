"""The failover engine: detector, plans, executor, journal, controller. Never imports providers."""
