"""kubeedge_cli/commands."""
