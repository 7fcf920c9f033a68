"""Demo network behind `make demo`."""
