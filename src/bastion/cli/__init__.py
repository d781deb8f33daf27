"""The ``bastion`` command (Typer): parses input, calls a service, renders the result."""
