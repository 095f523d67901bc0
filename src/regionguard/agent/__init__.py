"""The self-managed world's agent: one per site (issue 21). `lease_keeper.py` is the primary's
side of the write lease and its self-fence; the probing, the plan and the watchdog come next."""
