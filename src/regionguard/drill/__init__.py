"""Game days: a load client, fault injection, and measured RTO/RPO/availability/split brain."""
