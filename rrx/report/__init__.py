"""Tables and figures from finished runs' ``metrics.json``."""
