"""Privacy: exports (issue 15). To be built."""
