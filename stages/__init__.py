"""Thin Typer commands, one module per DVC stage. Each loads only its keys of params.yaml into a typed,
validated config and calls a plain function of the `gcseg` library."""
