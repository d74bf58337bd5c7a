"""Privacy: rectification (issue 15). To be built."""
