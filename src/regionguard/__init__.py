"""regionguard: one failover engine, two worlds (local sandbox and AWS)."""

__version__ = "0.1.0"
