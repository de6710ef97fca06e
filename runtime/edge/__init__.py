"""runtime/edge."""
