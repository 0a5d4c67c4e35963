"""Runtime: the module registry and the ways to run it (all-in-one, one service per process)."""
