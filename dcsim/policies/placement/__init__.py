"""Placement policies: which nodes a started job's accelerators come from."""
