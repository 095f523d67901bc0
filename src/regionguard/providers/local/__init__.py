"""What a self-managed site's agent drives on its own host: PostgreSQL (`postgres/`), probes,
process tracking, where HAProxy is. The agent wires them into the engine's ports
(agent/ports.py); policy stays in the engine.
"""
