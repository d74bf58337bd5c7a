"""Privacy: policy (issue 15). To be built."""
