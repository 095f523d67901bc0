"""The self-managed world's agent: one per site (issue 21). `lease_keeper.py` is the primary's
side of the write lease and its self-fence, `watchdog.py` fences the database when the agent
itself hangs; the probing and the plan come next."""
