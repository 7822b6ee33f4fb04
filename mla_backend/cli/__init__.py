"""The `mla-backend` command and its tools: main (arguments, dispatch), doctor, serve, bench, bundle, terminal.

`python -m mla_backend.cli ...` is the same command (the console script is mla_backend.cli.main:main)."""
