"""cliff bases of the ``nova-rt`` commands, shared with ``openstack rt``.

A command says what it asks (``add_arguments``) and fetches its document
(``fetch``: one or a few RPC calls, no printing); these bases choose the
columns (``output.pick_columns``) and turn every failure into the CLI's
contract: one line ``ERROR: <Class>: message`` and exit code 1 when a
service refused or did not answer, ``<prog>: message`` and exit code 2 for
bad arguments or configuration, with nothing sent.
"""

from __future__ import annotations

import sys
from typing import Any

from cliff import lister
from cliff import show

from nova_rt.cli import output


class _RtCommand:
    # osc: nova_rt speaks RPC, configured by its own file, not Keystone.
    auth_required = False
    view = output.View()

    def add_arguments(self, parser) -> None:
        """The command's own arguments."""

    def check(self, args) -> None:
        """Arguments argparse cannot check alone; raise ``UsageError``."""
        output.check_columns(args.columns, self.view.known)

    def fetch(self, clients, args) -> Any:
        raise NotImplementedError

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument(
            '--long', action='store_true',
            help='table, value, csv: every column (json and yaml always '
                 'print the whole document)')
        self.add_arguments(parser)
        return parser

    def _document(self, args) -> Any:
        self.check(args)
        return self.fetch(self.app.client_manager.rt, args)

    def _columns(self, keys, args) -> list:
        return output.pick_columns(keys, self.view, args.formatter, args.long,
                                   args.columns)

    def run(self, parsed_args) -> int:
        from nova_rt.cli import clients as clients_mod
        stderr = getattr(self.app, 'stderr', None) or sys.stderr
        try:
            return super().run(parsed_args)
        except output.UsageError as exc:
            print(f'{self.app.NAME}: {exc}', file=stderr)
            return 2
        except clients_mod.CliError as exc:
            print(exc.line(), file=stderr)
            return 1
        except Exception as exc:
            if getattr(self.app.options, 'debug', False):
                raise
            error = clients_mod.remote_error(exc) or clients_mod.CliError(
                ' '.join(str(exc).split()) or 'no details', type(exc).__name__)
            print(error.line(), file=stderr)
            return 1


class Show(_RtCommand, show.ShowOne):
    """A command whose document is one record."""

    def take_action(self, parsed_args):
        record = self._document(parsed_args)
        columns = self._columns(list(record), parsed_args)
        return columns, output.row(record, columns, self.view)


class List(_RtCommand, lister.Lister):
    """A command whose document is a list of records."""

    def take_action(self, parsed_args):
        records = self._document(parsed_args)
        columns = self._columns(output.keys_of(records) or list(self.view.main),
                                parsed_args)
        if (not records and self.view.empty and parsed_args.formatter == 'table'
                and not getattr(parsed_args, 'print_empty', False)):
            print(self.view.empty, file=self.app.stdout)
        return columns, [output.row(r, columns, self.view) for r in records]
