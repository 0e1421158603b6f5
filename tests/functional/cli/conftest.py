# The threading backend must be chosen before oslo.service is imported.
from oslo_service import backend as _backend

try:
    _backend.init_backend(_backend.BackendType.THREADING)
except Exception:   # another package of the run chose it first: fine
    pass

import dataclasses  # noqa: E402
import os  # noqa: E402

import pytest  # noqa: E402

from nova_rt.cmd import cli  # noqa: E402
from tests.functional.compute import fixtures as compute_fixtures  # noqa: E402


@dataclasses.dataclass
class CliStack:
    """A running placement + nova-rt-compute and a CLI config file for them."""

    stack: object              # compute_fixtures.ComputeStack
    config_file: str

    @property
    def host(self) -> str:
        return self.stack.host


@pytest.fixture(scope='module')
def cli_stack(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp('cli'))
    with compute_fixtures.running_compute_stack(workdir) as stack:
        config_file = os.path.join(workdir, 'cli.conf')
        with open(config_file, 'w') as f:
            f.write(f'[DEFAULT]\ntransport_url = {stack.placement.transport_url}\n'
                    f'control_exchange = {stack.placement.exchange}\n')
        yield CliStack(stack, config_file)


@pytest.fixture
def nova_rt(cli_stack, capsys):
    """``nova_rt(*argv) -> (exit code, stdout, stderr)``: the CLI in this process."""
    def run(*argv, config_file=None):
        capsys.readouterr()
        code = cli.main(['--config-file', config_file or cli_stack.config_file,
                         *argv])
        captured = capsys.readouterr()
        return code, captured.out, captured.err
    return run
