"""The `jaxdeblur` command's app: one-line errors, exit statuses, the `--debug` option.

Every command registered on `app` (with `app.command()`) reports a bad input
as ONE line, `error: <message>`, and exits with status 2; `--debug` shows the
traceback instead. Ctrl-C stops with one line saying where `--resume`
continues from (status 130). Usage errors (a missing option, a value of the
wrong type) are one line too.
"""

from __future__ import annotations

import functools
import inspect
import sys
from typing import Callable, get_type_hints

import typer
from typer.core import TyperGroup

try:  # typer >= 0.20 vendors click
    from typer._click.exceptions import ClickException, NoArgsIsHelpError
except ImportError:  # pragma: no cover - older typer on click
    from click.exceptions import ClickException, NoArgsIsHelpError

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
# What a person can fix: bad files, values, names, folders, too little memory.
USER_ERRORS = (ValueError, TypeError, OSError, MemoryError)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def one_line_errors(command: Callable) -> Callable:
    """Wraps a command: errors become `error: <message>` (exit 2; 1 for internal errors), --debug re-raises.

    Adds a `--debug` option to the command (unless it has a `debug` parameter).
    """
    signature = inspect.signature(command, eval_str=True)
    has_debug = "debug" in signature.parameters

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        debug = kwargs["debug"] if has_debug else kwargs.pop("debug", False)
        try:
            return command(*args, **kwargs)
        except typer.Exit:
            raise
        except KeyboardInterrupt as error:
            if debug:
                raise
            typer.echo(str(error) or "interrupted", err=True)  # a RunInterrupted says where --resume continues
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except USER_ERRORS as error:
            if debug:
                raise
            typer.echo(f"error: {_one_line(error)}", err=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except Exception as error:  # noqa: BLE001 - one line for anything else too
            if debug:
                raise
            typer.echo(f"error: {type(error).__name__}: {_one_line(error)} (run again with --debug for the "
                       "traceback)", err=True)
            raise typer.Exit(EXIT_FAILED) from None

    if not has_debug:
        debug = inspect.Parameter("debug", inspect.Parameter.KEYWORD_ONLY, annotation=bool,
                                  default=typer.Option(False, "--debug", help="Show the traceback of an error."))
        params = list(signature.parameters.values())
        wrapper.__signature__ = signature.replace(parameters=params + [debug])
        wrapper.__annotations__ = {**get_type_hints(command), "debug": bool}
    return wrapper


class _OneLineUsageErrors(TyperGroup):
    """Click's usage errors (missing option, wrong type) as one line, exit 2."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            status = super().main(*args, standalone_mode=False, **kwargs)
        except NoArgsIsHelpError as error:
            error.show()
            sys.exit(error.exit_code)
        except ClickException as error:
            typer.echo(f"error: {_one_line(error.format_message())}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        except typer.Abort:
            typer.echo("aborted", err=True)
            sys.exit(EXIT_FAILED)
        sys.exit(status if isinstance(status, int) else 0)


class CommandApp(typer.Typer):
    """A Typer app whose every command gets `one_line_errors` (and so a --debug option)."""

    def command(self, *args, **kwargs):
        register = super().command(*args, **kwargs)
        return lambda fn: register(one_line_errors(fn))


app = CommandApp(cls=_OneLineUsageErrors, add_completion=False, no_args_is_help=True,
                 pretty_exceptions_enable=False, help="Blind image deblurring with deep image priors (JAX).")


def say(message: str) -> None:
    """One line on stderr (progress, notes, warnings)."""
    typer.echo(message, err=True)


__all__ = ["app", "CommandApp", "one_line_errors", "say", "EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_INTERRUPTED",
           "USER_ERRORS"]
