"""runtime/pki."""
