"""``nova-rt``: the cliff application around ``commands.COMMANDS``.

It gives the commands what python-openstackclient would
(``app.client_manager.rt``, the project's RPC ``Clients``), so the same
command classes run under ``nova-rt`` and ``openstack rt``.
"""

from __future__ import annotations

import argparse
import logging

from cliff import app
from cliff import commandmanager

from nova_rt.cli import commands
from nova_rt.cli import connect
from nova_rt.cli import output
from nova_rt import version

PROG = 'nova-rt'


class _ClientManager:
    """``rt``: the RPC clients, made when a command first asks, so that
    ``--help`` and usage errors need no config file and no broker."""

    def __init__(self, make):
        self._make = make
        self._rt = None

    @property
    def rt(self):
        if self._rt is None:
            self._rt = self._make()
        return self._rt

    def close(self) -> None:
        if self._rt is not None:
            self._rt.close()
            self._rt = None


class NovaRtApp(app.App):

    NAME = PROG

    def __init__(self, stdout=None, stderr=None):
        manager = commandmanager.CommandManager('nova_rt.cli')
        for name, command in commands.COMMANDS.items():
            manager.add_command(name, command)
        super().__init__(
            description='Look at and drive nova-rt-compute and nova-rt-placement '
                        'over RPC.',
            version=version.version_string(), command_manager=manager, deferred_help=True,
            stdout=stdout, stderr=stderr)
        self.client_manager = None
        self._log_level = None

    def build_option_parser(self, description, version, argparse_kwargs=None):
        parser = super().build_option_parser(description, version, {
            'epilog': commands.EPILOG, 'allow_abbrev': False,
            'formatter_class': argparse.RawDescriptionHelpFormatter})
        for action in parser._actions:
            if isinstance(action, argparse._VersionAction):
                # cliff names the interpreter's argv[0], not this program.
                action.version = f'{PROG} {version}'
        parser.prog = PROG
        connect.add_options(parser)
        parser.add_argument(
            '-f', '--format', dest='global_format', choices=output.FORMATS,
            help='output format of the command (also accepted after it, '
                 'where it wins)')
        return parser

    def configure_logging(self):
        # cliff's own would add a handler to the root logger on every run;
        # main() runs many times in one process (tests, the quick start).
        connect.init_backend()
        self._log_level = connect.init_logging(self.options.debug, self.stderr)

    def interact(self):
        # No command: help on stderr and a usage error, not cliff's shell.
        self.parser.print_help(self.stderr)
        self.stderr.write('\ncommands:\n' + ''.join(
            f'  {name}\n' for name, _ in sorted(self.command_manager)))
        raise SystemExit(2)

    def run_subcommand(self, argv):
        try:
            _factory, _name, sub_argv = self.command_manager.find_command(argv)
        except ValueError:
            self.stderr.write(f"{PROG}: '{' '.join(argv)}' is not a {PROG} "
                              f"command; see '{PROG} --help'\n")
            return 2
        if self.options.global_format:
            # Right after the command's words, so that one given after the
            # command (``host list -f yaml``) still wins.
            words = len(argv) - len(sub_argv)
            argv = argv[:words] + ['-f', self.options.global_format] + sub_argv
        return super().run_subcommand(argv)

    def prepare_to_run_command(self, cmd):
        if self.client_manager is None:
            options = self.options
            self.client_manager = _ClientManager(lambda: self._make_clients(
                options.config_file, options.transport_url, options.timeout))

    def _make_clients(self, config_file, transport_url, timeout):
        return connect.make_clients(PROG, config_file, transport_url, timeout,
                                    self.stderr)

    def clean_up(self, cmd, result, err):
        if self.client_manager is not None:
            self.client_manager.close()
        if self._log_level is not None:
            logging.getLogger().setLevel(self._log_level)
