"""``rxfill demo``: the sample orders filled on simulators, and its alarm board."""
