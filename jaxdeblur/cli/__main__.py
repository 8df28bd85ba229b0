"""`python -m jaxdeblur.cli ...`: the `jaxdeblur` command."""

from jaxdeblur.cli import app

app()
