"""The local world: real PostgreSQL, app processes and HAProxy on this machine.

`wiring.build_ports(topology, state_dir)` is the one wiring function the CLI and the controller
use; `adapters.py` translates port calls to the sandbox's pieces (`sandbox.py`, `postgres/`,
`processes.py`, `haproxy.py`); policy stays in the engine.
"""
