"""runtime/kube."""
