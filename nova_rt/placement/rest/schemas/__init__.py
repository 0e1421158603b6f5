"""JSON schemas of request bodies and query strings, per microversion, as
Placement's ``schemas``."""
