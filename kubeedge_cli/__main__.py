"""`python -m kubeedge_cli` is the same as the `kedge` executable."""

from kubeedge_cli.entry import run

run()
