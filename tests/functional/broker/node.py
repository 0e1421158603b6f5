"""A private RabbitMQ node with a TLS listener, and the certificates it
needs, made at test time.

The node is the machine's own ``rabbitmq-server`` started as a second node:
its own node name, distribution port, Erlang cookie (``HOME``), mnesia, log
and config in a temporary directory, a TLS listener on a free loopback port
and no plain listener.  The shared node on 5672 is never touched.

- ``make_pki(directory)``: a CA, a server certificate for ``127.0.0.1`` and
  ``localhost``, a client certificate per name asked for, and a second CA
  that signed nothing the node trusts.
- ``PrivateRabbit(directory, pki)``: ``start()``, ``ctl(*args)``
  (``rabbitmqctl`` against this node), ``url(user, password, vhost)``,
  ``stop()``, ``log_text()``.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid

RABBITMQ_BIN = '/usr/lib/rabbitmq/bin'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


# -- certificates -----------------------------------------------------------

@dataclasses.dataclass
class Pki:
    ca: str                 # the CA the node and the clients trust
    server_cert: str
    server_key: str
    clients: dict           # name -> (cert, key), signed by ``ca``
    other_ca: str           # a CA nobody here trusts
    other_client: tuple     # (cert, key) signed by ``other_ca``


def _key():
    from cryptography.hazmat.primitives.asymmetric import ec
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(path: str, cert, key=None) -> None:
    from cryptography.hazmat.primitives import serialization
    if key is not None:
        with open(path + '.key', 'wb') as f:
            f.write(key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption()))
        os.chmod(path + '.key', 0o600)
    with open(path + '.pem', 'wb') as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


def _ca(common_name: str):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    key = _key()
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0),
                           critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False,
                key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(
                key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def _leaf(ca_cert, ca_key, common_name: str, server: bool):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID
    key = _key()
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(_name(common_name))
               .issuer_name(ca_cert.subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                              critical=True)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca_key.public_key()), critical=False)
               .add_extension(x509.ExtendedKeyUsage(
                   [ExtendedKeyUsageOID.SERVER_AUTH if server
                    else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.DNSName('localhost'),
            x509.IPAddress(ipaddress.ip_address('127.0.0.1'))]), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def make_pki(directory: str, clients=('client',)) -> Pki:
    os.makedirs(directory, exist_ok=True)
    path = lambda name: os.path.join(directory, name)  # noqa: E731
    ca_cert, ca_key = _ca('nova_rt test CA')
    _write(path('ca'), ca_cert)
    server_cert, server_key = _leaf(ca_cert, ca_key, 'localhost', server=True)
    _write(path('server'), server_cert, server_key)
    issued = {}
    for name in clients:
        cert, key = _leaf(ca_cert, ca_key, name, server=False)
        _write(path(f'client-{name}'), cert, key)
        issued[name] = (path(f'client-{name}.pem'), path(f'client-{name}.key'))
    other_cert, other_key = _ca('nobody trusts this CA')
    _write(path('other-ca'), other_cert)
    stray_cert, stray_key = _leaf(other_cert, other_key, 'stray', server=False)
    _write(path('client-stray'), stray_cert, stray_key)
    return Pki(path('ca.pem'), path('server.pem'), path('server.key'), issued,
               path('other-ca.pem'),
               (path('client-stray.pem'), path('client-stray.key')))


# -- the node ---------------------------------------------------------------

class NodeError(RuntimeError):
    pass


class PrivateRabbit:
    """A second RabbitMQ node, TLS only, in ``directory``."""

    def __init__(self, directory: str, pki: Pki):
        self.directory = directory
        self.pki = pki
        self.name = f'nova_rt_{uuid.uuid4().hex[:8]}@localhost'
        self.tls_port = free_port()
        self.dist_port = free_port()
        self.process: subprocess.Popen | None = None
        self._env = None

    # The node's environment: nothing of /etc/rabbitmq's node applies.
    def _environment(self) -> dict:
        d = self.directory
        for sub in ('home', 'mnesia', 'log'):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        with open(os.path.join(d, 'rabbitmq.conf'), 'w') as f:
            f.write(
                'listeners.tcp = none\n'
                f'listeners.ssl.default = 127.0.0.1:{self.tls_port}\n'
                f'ssl_options.cacertfile = {self.pki.ca}\n'
                f'ssl_options.certfile = {self.pki.server_cert}\n'
                f'ssl_options.keyfile = {self.pki.server_key}\n'
                # Clients must show a certificate of our CA as well as a
                # password: a password alone, leaked, does not get in.
                'ssl_options.verify = verify_peer\n'
                'ssl_options.fail_if_no_peer_cert = true\n'
                'log.file.level = info\n'
                'log.console = false\n')
        with open(os.path.join(d, 'enabled_plugins'), 'w') as f:
            f.write('[].\n')
        with open(os.path.join(d, 'rabbitmq-env.conf'), 'w') as f:
            f.write('ERL_EPMD_ADDRESS=127.0.0.1\n')
        return {
            'PATH': os.environ.get('PATH', '/usr/bin:/bin'),
            'LANG': 'C.UTF-8', 'LC_ALL': 'C.UTF-8',
            'HOME': os.path.join(d, 'home'),     # the node's own cookie
            'RABBITMQ_NODENAME': self.name,
            'RABBITMQ_DIST_PORT': str(self.dist_port),
            'RABBITMQ_CONFIG_FILE': os.path.join(d, 'rabbitmq.conf'),
            'RABBITMQ_ADVANCED_CONFIG_FILE': os.path.join(d, 'advanced.config'),
            'RABBITMQ_CONF_ENV_FILE': os.path.join(d, 'rabbitmq-env.conf'),
            'RABBITMQ_ENABLED_PLUGINS_FILE': os.path.join(d, 'enabled_plugins'),
            'RABBITMQ_MNESIA_BASE': os.path.join(d, 'mnesia'),
            'RABBITMQ_LOG_BASE': os.path.join(d, 'log'),
            'RABBITMQ_PID_FILE': os.path.join(d, 'rabbitmq.pid'),
            'ERL_EPMD_ADDRESS': '127.0.0.1',
        }

    @property
    def env(self) -> dict:
        if self._env is None:
            self._env = self._environment()
        return self._env

    def start(self, timeout: float = 90) -> None:
        server = os.path.join(RABBITMQ_BIN, 'rabbitmq-server')
        if not os.access(server, os.X_OK) or shutil.which('erl') is None:
            raise NodeError(f'{server} is not installed (bindep.txt: '
                            'rabbitmq-server)')
        self._stdout = open(os.path.join(self.directory, 'stdout.log'), 'w')
        self.process = subprocess.Popen(
            [server], env=self.env, cwd=self.directory, stdout=self._stdout,
            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise NodeError(f'rabbitmq-server exited '
                                f'{self.process.returncode}:\n'
                                + self.log_text()[-3000:])
            if self._tls_answers():
                break
            time.sleep(0.2)
        else:
            raise NodeError('the private RabbitMQ node did not open its TLS '
                            f'port {self.tls_port} in {timeout}s:\n'
                            + self.log_text()[-3000:])
        self.ctl('await_startup', timeout=timeout)

    def _tls_answers(self) -> bool:
        try:
            with socket.create_connection(('127.0.0.1', self.tls_port), 0.5):
                return True
        except OSError:
            return False

    def ctl(self, *args, input: str | None = None,
            timeout: float = 60) -> str:
        """``rabbitmqctl -n NODE ARGS`` against this node; its stdout."""
        done = subprocess.run(
            [os.path.join(RABBITMQ_BIN, 'rabbitmqctl'), '-n', self.name,
             *args], env=self.env, input=input, capture_output=True,
            text=True, timeout=timeout)
        if done.returncode:
            raise NodeError(f'rabbitmqctl {args[0]} failed: '
                            f'{done.stdout}{done.stderr}')
        return done.stdout

    def url(self, user: str, password: str, vhost: str) -> str:
        from urllib.parse import quote
        return (f'rabbit://{quote(user, safe="")}:{quote(password, safe="")}'
                f'@127.0.0.1:{self.tls_port}/{quote(vhost, safe="")}')

    def log_text(self) -> str:
        text = []
        for root, _dirs, files in os.walk(os.path.join(self.directory, 'log')):
            for name in sorted(files):
                if name.endswith('.log'):
                    with open(os.path.join(root, name), errors='replace') as f:
                        text.append(f.read())
        path = os.path.join(self.directory, 'stdout.log')
        if os.path.exists(path):
            with open(path, errors='replace') as f:
                text.append(f.read())
        return ''.join(text)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                self.ctl('stop', timeout=30)
            except (NodeError, subprocess.SubprocessError, OSError):
                pass
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                pass
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        else:
            # Whatever the node left in its session (erl_child_setup ...).
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._stdout.close()
        self.process = None
