"""The self-managed sites' arbiter: etcd v3, one member per site (issue 21).

`client.py` makes the calls across the members, `state.py` keeps the engine's StateStore and
ObservationStore there, `writer_lease.py` is the primary's side of the write lease.
"""
