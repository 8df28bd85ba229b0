"""The `jaxdeblur` command: `jaxdeblur deblur ...`, `jaxdeblur demo`, `train`, `restore`, `transfer`, ...

Every typer command of the package lives in this package (the library
modules hold no command): `app` (one-line errors, exit statuses, `--debug`:
`jaxdeblur.cli.base`), `deblur` and `demo` (`jaxdeblur.cli.deblur`), the
trained models' `train`, `restore`, `transfer` and `import-weights`
(`jaxdeblur.cli.models`). The entry point is `jaxdeblur.cli:app`;
`python -m jaxdeblur.cli` runs it too.
"""

from jaxdeblur.cli.base import (EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, USER_ERRORS, CommandApp, app,
                               one_line_errors)
from jaxdeblur.cli.deblur import deblur, demo
from jaxdeblur.cli.models import import_weights_command, restore_command, train_command, transfer_command

app.command("train")(train_command)
app.command("restore")(restore_command)
app.command("transfer")(transfer_command)
app.command("import-weights")(import_weights_command)

__all__ = ["app", "CommandApp", "one_line_errors", "EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_INTERRUPTED", "USER_ERRORS",
           "deblur", "demo", "train_command", "restore_command", "transfer_command", "import_weights_command"]
