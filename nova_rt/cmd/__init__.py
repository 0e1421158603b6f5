"""Console entry points: compute, placement, the nova-rt CLI, manage, status, demo."""
