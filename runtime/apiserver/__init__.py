"""runtime/apiserver."""
