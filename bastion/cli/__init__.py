"""The typer CLI: the only place that prints or exits."""
