"""`mlplat monitor`: the command line around the drift job's runtime (`mlplat.monitor`), which ships without it."""
