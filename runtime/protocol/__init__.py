"""runtime/protocol."""
