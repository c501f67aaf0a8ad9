"""The `playground` command line (typer): `engine.cli.app:main` is the console script."""
