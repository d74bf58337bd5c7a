"""Privacy: retention (issue 15). To be built."""
