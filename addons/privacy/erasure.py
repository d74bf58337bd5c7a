"""Privacy: erasure (issue 15). To be built."""
