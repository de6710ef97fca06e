"""runtime/cloud."""
