"""Pure CPU, NUMA and memory-page accounting (no I/O, no global config)."""
