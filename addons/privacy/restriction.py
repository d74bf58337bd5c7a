"""Privacy: restriction (issue 15). To be built."""
