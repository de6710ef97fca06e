"""kubeedge_cli."""
