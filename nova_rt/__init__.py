"""nova_rt: a compute-node resource tracker and its placement service."""
