"""The virtual two-region cluster behind cluster/vcluster (Python 3 standard library only)."""
