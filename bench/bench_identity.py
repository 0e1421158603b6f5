"""What signing every RPC message costs (issue 18, item 5).

    .venv/bin/python bench/bench_identity.py [--json] [--rounds 4]
        [--reps 2000] [--claims 100] [--clients 8] [--seconds 4]
        [--parts in-process,claims,reports]

Measures in one run, on this machine:

1. in process, per message, p50/p99 in microseconds: ``Caller.stamp`` (sign)
   and ``Guard.check`` (verify, nonce, policy) of a typical
   ``instance_claim`` and of ``report_allocations`` of 1, 10, 100 and 1000
   consumers; ``Verdict.seal`` of the reply and ``Caller.open_reply``; and
   the parts of them: the canonical JSON of the request, the key id (which
   stamp and seal derive for every message), Ed25519 sign and verify;
2. over RabbitMQ, against real ``nova-rt-compute`` daemons (libvirt test
   driver, a 64-CPU host): instance_claim latency (then its abort, untimed)
   in interleaved rounds of (a) no keys, ``[identity] enforce`` off and
   (b) keys on every side, enforce on; and in the same rounds an
   oslo.messaging call to a server that does nothing
   (``oslo_floor_server``): the floor under both;
3. placement's CPU per ``report_allocations`` change report (two consumers
   gone, two new, as a compute sends after claims) from ``--clients``
   concurrent clients, unsigned (a) and signed by the reporting host (b):
   user+system CPU of the placement process (``/proc/PID/stat``) divided by
   the reports it answered, in interleaved rounds.

Target (issue 18): signing and checking cost < 5% of the claim p50 and of
placement's CPU per report.  Each of (a) and (b) is a stack of its own
(placement on SQLite on a vhost of its own, and a compute daemon), so the
rounds can alternate without restarting anything.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings

# Eventlet warns on import, and oslo.service imports it even when unused.
warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(BENCH))
sys.path.insert(0, BENCH)

# bench_rpc first: it selects oslo.service's threading backend, which must
# come before anything of oslo.service is used.
import bench_rpc  # noqa: E402, I100
import bench_placement  # noqa: E402
import oslo_floor_server  # noqa: E402
import oslo_messaging as messaging  # noqa: E402

from nova_rt import gcutil  # noqa: E402
from nova_rt import objects  # noqa: E402
from nova_rt import rpc  # noqa: E402
from nova_rt.compute import claims  # noqa: E402
from nova_rt.compute import methods as compute_methods  # noqa: E402
from nova_rt.identity import caller as caller_mod  # noqa: E402
from nova_rt.identity import guard as guard_mod  # noqa: E402
from nova_rt.identity import keys  # noqa: E402
from nova_rt.identity import scheme  # noqa: E402
from nova_rt.placement import methods as placement_methods  # noqa: E402
from nova_rt.placement import rpcapi as placement_rpcapi  # noqa: E402
from tests.functional.compute import fixtures as compute_fixtures  # noqa: E402
from tests.functional.placement import fixtures as placement_fixtures  # noqa: E402
from tests.functional.virt import hostxml  # noqa: E402

PARTS = ('in-process', 'claims', 'reports')
CONSUMERS = (1, 10, 100, 1000)
CONDUCTOR = 'conductor-1'
PLACEMENT = 'nova-rt-placement'
#: Consumers a change report removes and adds (as after claims and aborts).
CHANGED = 2
CTX = {'request_id': 'req-bench-identity'}


def instance() -> dict:
    """A claim's instance as a conductor sends it."""
    return {**bench_rpc.instance(), 'vm_state': 'building',
            'task_state': None, 'os_type': 'linux',
            'is_volume_backed': False}


def claim_reply(inst: dict, host: str) -> dict:
    """What ``instance_claim`` answers (the tracker's own ``to_wire``)."""
    flavor = inst['flavor']
    return claims.Claim(
        claim_id=str(uuid.uuid4()), instance_uuid=inst['uuid'],
        migration_uuid=None, flavor=objects.Flavor.from_dict(flavor),
        resources={'VCPU': flavor['vcpus'], 'MEMORY_MB': flavor['memory_mb'],
                   'DISK_GB': flavor['root_gb']}).to_wire(host, host)


def allocations_report(host: str, root: str, consumers: int) -> dict:
    """A full ``report_allocations`` of ``consumers`` instances."""
    sim = {'root': root}
    return {'host': host, 'root_uuid': root, 'generation': 7, 'full': True,
            'allocations': {str(uuid.uuid4()): bench_placement._resources(sim)
                            for _ in range(consumers)}}


def identity_caller(keys_dir: str, principal: str | None,
                    enforce: bool) -> caller_mod.Caller:
    """What ``identity.config.caller`` makes of such an ``[identity]``."""
    own = (keys.OwnKey(keys.key_path(keys_dir, principal), principal)
           if principal else None)
    return caller_mod.Caller(own_key=own, keyring=keys.Keyring(keys_dir),
                             enforce=enforce, placement_principal=PLACEMENT)


def summary_us(samples_ns: list) -> dict:
    return {'p50_us': round(bench_rpc.percentile(samples_ns, 50) / 1000, 1),
            'p99_us': round(bench_rpc.percentile(samples_ns, 99) / 1000, 1),
            'n': len(samples_ns)}


def each_timed(func, inputs, before=None) -> tuple:
    """(func's results, ns per call) over ``inputs``; ``before()`` runs
    untimed before each call."""
    results, samples = [], []
    clock = time.perf_counter_ns
    for item in inputs:
        if before is not None:
            before()
        started = clock()
        results.append(func(item))
        samples.append(clock() - started)
    return results, samples


# -- 1. in process -------------------------------------------------------------

@dataclasses.dataclass
class Case:
    """One kind of message: who signs it, who checks it, what it carries."""

    name: str
    method: object                  # rpctable.Method
    caller: caller_mod.Caller
    guard: guard_mod.Guard
    expected: str                   # who must sign the reply
    args: dict
    reply: object


def in_process_cases(keys_dir: str) -> list:
    for principal in ('host-a', CONDUCTOR, PLACEMENT):
        keys.create_key(keys_dir, principal)
    keyring = keys.Keyring(keys_dir)
    policy = scheme.Policy.of(conductors=[CONDUCTOR])

    def guard(topic, server, principal):
        return guard_mod.Guard(
            topic=topic, server=server, keyring=keyring, policy=policy,
            enforce=True, window_s=60, own_key=keys.OwnKey(
                keys.key_path(keys_dir, principal), principal))

    compute_guard = guard(rpc.COMPUTE_TOPIC, 'host-a', 'host-a')
    placement_guard = guard(rpc.PLACEMENT_TOPIC, None, PLACEMENT)
    conductor = identity_caller(keys_dir, CONDUCTOR, True)
    host = identity_caller(keys_dir, 'host-a', True)
    inst = instance()
    cases = [Case('instance_claim', compute_methods.TABLE['instance_claim'],
                  conductor, compute_guard, 'host-a',
                  {'instance': inst, 'nodename': None},
                  claim_reply(inst, 'host-a'))]
    root = str(uuid.uuid4())
    for n in CONSUMERS:
        cases.append(Case(
            f'report_allocations x{n}',
            placement_methods.TABLE['report_allocations'], host,
            placement_guard, PLACEMENT, allocations_report('host-a', root, n),
            {root: 8}))
    return cases


def message_life(case: Case, reps: int, before=None) -> tuple:
    """ns per message of stamp, check, seal and open_reply, ``reps``
    messages; and the last stamp."""
    topic, server = case.guard.topic, case.guard.server
    name = case.method.name
    serializer = rpc.ContextSerializer()
    stamped, stamp_ns = each_timed(
        lambda _: case.caller.stamp(CTX, topic=topic, server=server,
                                    method=name, args=case.args), range(reps),
        before)
    # As the server sees the context: what oslo.messaging hands the endpoint.
    contexts = [serializer.deserialize_context(ctx) for ctx, _ in stamped]
    verdicts, check_ns = each_timed(
        lambda ctx: case.guard.check(ctx, case.method, case.args), contexts,
        before)
    refused = [v.refusal for v in verdicts if v.refusal is not None]
    if refused or any(v.key is None for v in verdicts):
        raise RuntimeError(f'{case.name}: the guard refused or cannot sign: '
                           f'{refused[:1]}')
    replies, seal_ns = each_timed(lambda v: v.seal(case.reply), verdicts,
                                  before)
    _, open_ns = each_timed(
        lambda pair: case.caller.open_reply(case.expected, name, pair[0],
                                            pair[1]),
        [(nonce, reply) for (_, nonce), reply in zip(stamped, replies)],
        before)
    return ({'stamp': summary_us(stamp_ns), 'check': summary_us(check_ns),
             'seal': summary_us(seal_ns), 'open_reply': summary_us(open_ns)},
            stamped[-1][0][scheme.CONTEXT_KEY])


def cold_caches(megabytes: int = 16):
    """What evicts the CPU caches between two messages, as a daemon's
    other work (oslo.messaging, SQL, libvirt) does between its calls."""
    junk = bytearray(megabytes * 1024 * 1024)
    return lambda: bytes(junk)


def measure_case(case: Case, reps: int) -> dict:
    """Each step of one message's life, ``reps`` messages, and its parts."""
    topic, server = case.guard.topic, case.guard.server
    name = case.method.name
    steps, first = message_life(case, reps)

    key = case.caller.own_key.get()
    data = scheme.request_bytes(
        topic=topic, server=server, method=name, args=case.args,
        principal=key.principal, key_id=first['key_id'], ts=first['ts'],
        nonce=first['nonce'])
    # What the scheme runs: libsodium through PyNaCl.
    signature = base64.b64decode(key.sign(data))
    public = key.verify_key
    # The parts on fewer repetitions: they are steady, the totals are not.
    parts = max(reps // 4, 10)
    _, canonical_ns = each_timed(lambda _: scheme.request_bytes(
        topic=topic, server=server, method=name, args=case.args,
        principal=key.principal, key_id=first['key_id'], ts=first['ts'],
        nonce=first['nonce']), range(parts))
    # Not what is signed (its numbers differ from RFC 8785): what the C
    # encoder would cost for the same document, the bound of a faster walk.
    document = json.loads(data.split(b'\n', 1)[1])     # after the domain
    _, c_json_ns = each_timed(lambda _: json.dumps(
        document, sort_keys=True, separators=(',', ':'), ensure_ascii=False
    ).encode(), range(parts))
    _, key_id_ns = each_timed(lambda _: key.key_id, range(parts))
    _, sign_ns = each_timed(lambda _: key.sign(data), range(parts))
    _, verify_ns = each_timed(lambda _: public.verify(data, signature),
                              range(parts))
    return {'bytes': len(data), **steps,
            'canonical_json': summary_us(canonical_ns),
            'stdlib_c_json': summary_us(c_json_ns),
            'key_id': summary_us(key_id_ns),
            'ed25519_sign': summary_us(sign_ns),
            'ed25519_verify': summary_us(verify_ns)}


def reps_for(name: str, reps: int) -> int:
    """Fewer of the big reports: their cost grows with the consumers."""
    consumers = int(name.rsplit('x', 1)[1]) if 'x' in name else 1
    return max(reps * 10 // max(consumers, 10), 10)


def in_process(reps: int) -> dict:
    with tempfile.TemporaryDirectory(prefix='bench-identity-') as keys_dir:
        cases = in_process_cases(keys_dir)
        # As the daemons do once started: the collector's pauses are then
        # of what a message makes, not of every module imported.
        gcutil.freeze_startup_objects()
        results = {case.name: measure_case(case, reps_for(case.name, reps))
                   for case in cases}
        # The claim once more, each step after the caches were flushed:
        # a daemon does not sign in a tight loop.
        results['instance_claim, cold caches'], _ = message_life(
            cases[0], max(reps // 40, 10), cold_caches())
        return results


# -- 2 and 3. real daemons on RabbitMQ ----------------------------------------

@dataclasses.dataclass
class Stack:
    label: str
    signed: bool
    keys_dir: str
    placement: object               # placement_fixtures.PlacementHandle
    compute: compute_fixtures.ComputeProcess
    api: object                     # ComputeAPI as the conductor

    def report_api(self, host: str) -> placement_rpcapi.PlacementAPI:
        if self.signed:
            keys.create_key(self.keys_dir, host)
        return placement_rpcapi.PlacementAPI(
            self.placement.transport, timeout=60, identity=identity_caller(
                self.keys_dir, host if self.signed else None, self.signed))


@contextlib.contextmanager
def running_stack(workdir: str, label: str, signed: bool):
    """placement + one compute daemon, with or without identities."""
    os.makedirs(workdir)
    keys_dir = os.path.join(workdir, 'keys')
    os.makedirs(keys_dir)
    host = f'bench-{label}'
    if signed:
        for principal in (host, PLACEMENT, CONDUCTOR):
            keys.create_key(keys_dir, principal)
    section = (f'[identity]\nenforce = {str(signed).lower()}\n'
               f'keys_dir = {keys_dir}\nconductors = {CONDUCTOR}\n')
    uri = hostxml.write_host_xml(os.path.join(workdir, 'host.xml'),
                                 n_domains=0, cpus=64,
                                 memory_kib=4 * 1024 ** 3)
    with placement_fixtures.running_placement(
            f'sqlite:///{workdir}/placement.sqlite', workdir,
            extra_conf='\n' + section) as placement:
        compute = compute_fixtures.ComputeProcess(
            workdir, host, placement.exchange,
            transport_url=placement.transport_url, connection_uri=uri,
            extra='cpu_allocation_ratio = 64.0\n', sections=section)
        compute.start()
        api, transport = compute_fixtures.compute_client(
            placement.exchange, url=placement.transport_url, timeout=60)
        api.identity = identity_caller(keys_dir, CONDUCTOR if signed else None,
                                       signed)
        try:
            yield Stack(label, signed, keys_dir, placement, compute, api)
        finally:
            transport.cleanup()
            code = compute.terminate()
            if code != 0:
                print(f'nova-rt-compute ({label}) exited {code}',
                      file=sys.stderr)


@contextlib.contextmanager
def floor_client(stack: Stack, workdir: str):
    """(a call to ``oslo_floor_server``, its pid), the server started on
    ``stack``'s placement config: the same transport, executor and threads,
    no work."""
    log_path = os.path.join(workdir, 'floor.log')
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(
            [sys.executable, os.path.join(BENCH, 'oslo_floor_server.py'),
             '--config-file', stack.placement.config_file],
            stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, 'PYTHONWARNINGS': 'ignore'})
    try:
        placement_fixtures.wait_serving(proc, log_path)
        client = rpc.get_client(stack.placement.transport, messaging.Target(
            topic=oslo_floor_server.TOPIC, version=rpc.RPC_VERSION),
            timeout=60).prepare()
        yield (lambda: client.call(CTX, 'get_allocations',
                                   consumer_uuid=str(uuid.uuid4())), proc.pid)
    finally:
        placement_fixtures.stop_process(proc)


def claim_pair(stack: Stack) -> float:
    """Seconds of one instance_claim (its abort follows, untimed)."""
    inst = instance()
    started = time.perf_counter()
    stack.api.instance_claim(CTX, stack.compute.host, instance=inst)
    elapsed = time.perf_counter() - started
    stack.api.abort_instance_claim(CTX, stack.compute.host,
                                   instance_uuid=inst['uuid'])
    return elapsed


def summary_ms(seconds: list) -> dict:
    return {'p50_ms': round(bench_rpc.percentile(seconds, 50) * 1000, 3),
            'p99_ms': round(bench_rpc.percentile(seconds, 99) * 1000, 3),
            'n': len(seconds)}


def interleaved(runs: dict, rounds: int) -> dict:
    """{label: what ``runs[label]()`` returned each round}, the labels
    taking turns, in reverse order every other round: each sees the
    machine's load as the others do."""
    results = {label: [] for label in runs}
    labels = list(runs)
    for number in range(rounds):
        for label in (labels if number % 2 == 0 else labels[::-1]):
            results[label].append(runs[label]())
    return results


def claims_over_rpc(unsigned: Stack, signed: Stack, floor, rounds: int,
                    per_round: int) -> dict:
    """Latency of each kind of call, and the CPU that the server (the
    daemon, or the floor's) and this caller spent per call: under a load
    that moves latencies, CPU says where the difference comes from."""
    def timed(call, server_pid):
        def run():
            cpu0 = bench_placement._cpu_seconds([server_pid])
            own0 = time.process_time()
            samples = [call() for _ in range(per_round)]
            return (samples, bench_placement._cpu_seconds([server_pid]) - cpu0,
                    time.process_time() - own0)
        return run

    call_floor, floor_pid = floor
    runs = {'floor': timed(lambda: _seconds(call_floor), floor_pid),
            'a': timed(lambda: claim_pair(unsigned), unsigned.compute.proc.pid),
            'b': timed(lambda: claim_pair(signed), signed.compute.proc.pid)}
    for run in runs.values():
        run()                       # warm up connections and caches
    result = {}
    for label, per_round_ in interleaved(runs, rounds).items():
        calls = per_round * rounds
        result[label] = summary_ms([x for one, _, _ in per_round_ for x in one])
        # A claim's figure is of the pair (the abort is a call too).
        result[label]['server_cpu_ms'] = round(
            sum(cpu for _, cpu, _ in per_round_) / calls * 1000, 3)
        result[label]['caller_cpu_ms'] = round(
            sum(own for _, _, own in per_round_) / calls * 1000, 3)
    a, b = result['a']['p50_ms'], result['b']['p50_ms']
    result['delta_p50_ms'] = round(b - a, 3)
    result['delta_p50_pct'] = round((b - a) / a * 100, 1)
    return result


def _seconds(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def change_report(sim: dict) -> dict:
    """Consumers gone and new since the host's last report (full=false)."""
    allocations = {}
    for _ in range(CHANGED):
        sim['n'] += 1
        slot = sim['n'] % len(sim['consumers'])
        gone, new = sim['consumers'][slot], str(uuid.uuid4())
        sim['consumers'][slot] = new
        allocations[gone] = {'project_id': 'p', 'user_id': 'u',
                             'resources': {}}
        allocations[new] = bench_placement._resources(sim)
    return {'host': sim['host'], 'root_uuid': sim['root'],
            'generation': sim['gen'], 'full': False,
            'allocations': allocations}


def simulated_hosts(stack: Stack, count: int) -> list:
    sims = []
    for i in range(count):
        host, root = f'sim-{i:03d}', str(uuid.uuid4())
        api = stack.report_api(host)
        generations = api.report_provider_tree(CTX, host=host, providers=[{
            'uuid': root, 'name': host, 'generation': None,
            'inventories': bench_placement._inventory(0)}])
        sims.append({'host': host, 'root': root, 'gen': generations[root],
                     'api': api, 'n': 0,
                     'consumers': [str(uuid.uuid4()) for _ in range(10)]})
    return sims


def report_round(stack: Stack, sims: list, clients: int,
                 seconds: float) -> tuple:
    """(placement CPU seconds, reports answered) of ``clients`` threads
    sending change reports for ``seconds``, each for hosts of its own."""
    counts = [0] * clients
    errors = []
    stop = time.monotonic() + seconds

    def client(index):
        mine = sims[index::clients]
        try:
            while time.monotonic() < stop:
                sim = mine[counts[index] % len(mine)]
                sim['gen'] = sim['api'].report_allocations(
                    CTX, **change_report(sim))[sim['root']]
                counts[index] += 1
        except Exception as exc:        # reported below, with the label
            errors.append(exc)

    pids = [p.pid for p in stack.placement.processes]
    cpu0 = bench_placement._cpu_seconds(pids)
    threads = [threading.Thread(target=client, args=(i,))
               for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cpu = bench_placement._cpu_seconds(pids) - cpu0
    if errors:
        raise RuntimeError(f'reports to ({stack.label}) failed: {errors[0]!r}')
    return cpu, sum(counts)


def reports_over_rpc(unsigned: Stack, signed: Stack, rounds: int,
                     clients: int, seconds: float) -> dict:
    sims = {stack.label: simulated_hosts(stack, clients * 2)
            for stack in (unsigned, signed)}
    stacks = {stack.label: stack for stack in (unsigned, signed)}

    def run(label, duration):
        return lambda: report_round(stacks[label], sims[label], clients,
                                    duration)

    for label in stacks:
        run(label, 1.0)()           # unmeasured: statements prepared
    samples = interleaved({label: run(label, seconds) for label in stacks},
                          rounds)
    result = {'clients': clients, 'consumers_changed': 2 * CHANGED}
    for label, per_round in samples.items():
        cpu = sum(c for c, _ in per_round)
        done = sum(n for _, n in per_round)
        result[label] = {'cpu_ms_per_report': round(cpu / done * 1000, 3),
                         'reports': done,
                         'reports_per_s': round(done / (seconds * rounds), 1)}
    a = result['a']['cpu_ms_per_report']
    b = result['b']['cpu_ms_per_report']
    result['delta_ms'] = round(b - a, 3)
    result['delta_pct'] = round((b - a) / a * 100, 1)
    return result


def over_rpc(args, parts) -> dict:
    results = {}
    with tempfile.TemporaryDirectory(prefix='bench-identity-') as workdir, \
            contextlib.ExitStack() as stacks:
        unsigned = stacks.enter_context(running_stack(
            os.path.join(workdir, 'a'), 'a', signed=False))
        signed = stacks.enter_context(running_stack(
            os.path.join(workdir, 'b'), 'b', signed=True))
        if 'claims' in parts:
            with floor_client(unsigned, workdir) as floor:
                results['claims'] = claims_over_rpc(
                    unsigned, signed, floor, args.rounds, args.claims)
        if 'reports' in parts:
            # Only the simulated hosts' reports in placement's CPU: not
            # the daemons' heartbeats and reports after claims.
            for stack in (unsigned, signed):
                stack.compute.terminate()
            results['reports'] = reports_over_rpc(
                unsigned, signed, args.rounds, args.clients, args.seconds)
    return results


# -- the run -------------------------------------------------------------------

def machine() -> dict:
    import cryptography
    from cryptography.hazmat.backends.openssl import backend
    return {'nproc': os.cpu_count(), 'python': sys.version.split()[0],
            'cryptography': cryptography.__version__,
            'openssl': backend.openssl_version_text(),
            'load_before': _load()}


def _load() -> list:
    return [round(x, 2) for x in os.getloadavg()]


def derived(results: dict) -> None:
    """The ratios the target is about, from the figures measured."""
    claim = results.get('in_process', {}).get('instance_claim')
    rpc_claims = results.get('claims')
    if not (claim and rpc_claims):
        return
    one_message = claim['stamp']['p50_us'] + claim['check']['p50_us']
    round_trip = one_message + claim['seal']['p50_us'] + \
        claim['open_reply']['p50_us']
    a_us = rpc_claims['a']['p50_ms'] * 1000
    rpc_claims['sign_check_us'] = round(one_message, 1)
    rpc_claims['sign_check_pct_of_a_p50'] = round(one_message / a_us * 100, 2)
    rpc_claims['with_reply_us'] = round(round_trip, 1)
    rpc_claims['with_reply_pct_of_a_p50'] = round(round_trip / a_us * 100, 2)
    cold = results['in_process'].get('instance_claim, cold caches')
    if cold:
        cold_us = sum(cold[step]['p50_us'] for step in cold)
        rpc_claims['with_reply_cold_us'] = round(cold_us, 1)
        rpc_claims['with_reply_cold_pct_of_a_p50'] = round(
            cold_us / a_us * 100, 2)


def print_table(results: dict) -> None:
    m = results['machine']
    print(f"machine: {m['nproc']} CPUs, Python {m['python']}, cryptography "
          f"{m['cryptography']} ({m['openssl']}); load average "
          f"{m['load_before']} before, {m['load_after']} after")
    cases = results.get('in_process')
    if cases:
        columns = ('stamp', 'check', 'seal', 'open_reply', 'canonical_json',
                   'stdlib_c_json', 'key_id', 'ed25519_sign', 'ed25519_verify')
        print('\nin process, per message, us p50 (p99)')
        print(f"{'message':28s} {'bytes':>7s} " + ' '.join(
            f'{c:>17s}' for c in columns))
        for name, case in cases.items():
            print(f"{name:28s} {case.get('bytes', ''):>7} " + ' '.join(
                f"{case[c]['p50_us']:8.1f} ({case[c]['p99_us']:6.1f})"
                if c in case else ' ' * 17 for c in columns))
    claims_ = results.get('claims')
    if claims_:
        print('\nover RabbitMQ, one caller: ms p50 (p99), n; CPU ms per call '
              '(claim: per claim + abort) of the server and of this caller')
        for label, text in (('floor', 'oslo.messaging no-op call'),
                            ('a', 'instance_claim, no keys, enforce off'),
                            ('b', 'instance_claim, signed, enforce on')):
            row = claims_[label]
            print(f"  {text:38s} {row['p50_ms']:7.3f} ({row['p99_ms']:7.3f}) "
                  f"{row['n']:4d}; CPU server {row['server_cpu_ms']:.3f}, "
                  f"caller {row['caller_cpu_ms']:.3f}")
        print(f"  claim p50 (b - a): {claims_['delta_p50_ms']:+.3f} ms = "
              f"{claims_['delta_p50_pct']:+.1f}% of (a)")
        if 'sign_check_us' in claims_:
            print(f"  in-process sign + check of one claim: "
                  f"{claims_['sign_check_us']:.1f} us = "
                  f"{claims_['sign_check_pct_of_a_p50']:.2f}% of (a)'s p50; "
                  f"with the reply's seal and check "
                  f"{claims_['with_reply_us']:.1f} us = "
                  f"{claims_['with_reply_pct_of_a_p50']:.2f}%")
        if 'with_reply_cold_us' in claims_:
            print(f"  the same four steps with cold caches: "
                  f"{claims_['with_reply_cold_us']:.1f} us = "
                  f"{claims_['with_reply_cold_pct_of_a_p50']:.2f}% of (a)'s "
                  f"p50")
    reports = results.get('reports')
    if reports:
        print(f"\nplacement CPU per report_allocations change report "
              f"({reports['consumers_changed']} consumers, "
              f"{reports['clients']} clients)")
        for label, text in (('a', 'unsigned, enforce off'),
                            ('b', 'signed, enforce on')):
            row = reports[label]
            print(f"  {text:38s} {row['cpu_ms_per_report']:7.3f} ms "
                  f"({row['reports']} reports, {row['reports_per_s']}/s)")
        print(f"  delta (b - a): {reports['delta_ms']:+.3f} ms = "
              f"{reports['delta_pct']:+.1f}% of (a)")
    print(f"\ncommand: {results['command']}")


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f'{text!r} is not a positive integer')
    return value


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f'{text!r} is not a positive number')
    return value


def parts(text: str) -> set:
    chosen = set(text.split(','))
    unknown = chosen - set(PARTS)
    if unknown:
        raise argparse.ArgumentTypeError(
            f'{sorted(unknown)[0]!r} is not one of {",".join(PARTS)}')
    return chosen


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--json', action='store_true',
                        help='print one JSON object instead of the table')
    parser.add_argument('--rounds', type=positive, default=4,
                        help='interleaved rounds of (a) and (b) over RPC')
    parser.add_argument('--reps', type=positive, default=2000,
                        help='messages per in-process figure (fewer for the '
                             'big reports)')
    parser.add_argument('--claims', type=positive, default=100,
                        help='claims of each kind per round')
    parser.add_argument('--clients', type=positive, default=8,
                        help='concurrent report senders')
    parser.add_argument('--seconds', type=seconds, default=4.0,
                        help='length of one round of reports')
    parser.add_argument('--parts', type=parts, default=set(PARTS),
                        help=f'what to measure, of {",".join(PARTS)}')
    args = parser.parse_args(argv)
    results = {'machine': machine(),
               'command': ' '.join(['bench/bench_identity.py',
                                    *(sys.argv[1:] if argv is None else argv)])}
    if 'in-process' in args.parts:
        results['in_process'] = in_process(args.reps)
    if args.parts & {'claims', 'reports'}:
        results.update(over_rpc(args, args.parts))
    derived(results)
    results['machine']['load_after'] = _load()
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)
    return 0


if __name__ == '__main__':
    sys.exit(main())
