"""One module per paper: the experiment that reproduces its table."""
