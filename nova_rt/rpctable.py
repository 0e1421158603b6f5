"""One table per RPC API: each method once, with its arguments and handler.

A service lists its methods in a ``Table`` (``compute/methods.py``,
``placement/methods.py``); the rest is derived from it:

- the endpoint: ``@TABLE.endpoint`` gives a class one method per row,
  ``method(self, context, /, **arguments)``, which hands the call to the
  class's ``_serve(name, context, arguments)``.  oslo.messaging calls
  ``method(context, **arguments)``, so with that signature it never raises a
  ``TypeError`` of its own for a missing or extra argument (an argument named
  ``context`` or ``self`` included): ``validate`` names it as
  ``InvalidInput``.  Only these methods are marked ``exposed``, so nothing
  else of the endpoint can be called (``rpc.get_server`` serves with
  oslo.messaging's ``ExplicitRPCAccessPolicy``);
- validation: ``validate(name, arguments)``: unknown and missing arguments,
  then the bounds (``validation.check_bounds``), then each argument's schema;
  it returns the arguments with the defaults of those not sent;
- the client: ``check_client(cls)`` holds a hand-written client's methods to
  the table (names, order, required and optional arguments), at import;
- the docs: ``signature(name)`` is how ``doc/source/rpc-api.rst`` must name
  each method (a unit test checks the page);
- versions, as Nova's RPC APIs have them: an argument added after ``1.0``
  says ``since='1.N'`` and must be optional.  ``version`` is the newest an
  endpoint serves (it accepts every older one), ``downgrade`` is what a
  client sends to a peer capped at an older version, and ``as_of(version)``
  is the table as that older release had it.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from typing import Callable, Optional

from nova_rt import exception
from nova_rt import validation
from nova_rt.identity import scheme

#: Marks an argument without default: the caller must send it.
REQUIRED = inspect.Parameter.empty
#: The version every table starts at.
BASE_VERSION = '1.0'


def version_tuple(version: str) -> tuple:
    """``'1.10'`` -> ``(1, 10)``: versions compare as numbers, not text."""
    major, minor = version.split('.')
    return int(major), int(minor)


@dataclasses.dataclass(frozen=True)
class Argument:
    name: str
    schema: dict
    default: object = REQUIRED
    #: The API version that added it: a peer older than that refuses it.
    since: str = BASE_VERSION

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclasses.dataclass(frozen=True)
class Method:
    """One RPC method.

    ``handler``: the name of what serves it (the tracker's method, the
    placement operation), the method's own name unless given.  ``event``:
    the notification's (event type, payload name), if it sends one.
    ``check``: what a schema cannot say, run on the validated arguments.
    ``who``: who may call it when ``[identity] enforce`` is on
    (``identity.scheme.WHO``): reads are for anyone, other methods for
    conductors (and operators) unless the row says otherwise.
    """
    name: str
    arguments: tuple = ()
    read_only: bool = False
    cast: bool = False
    event: Optional[tuple] = None
    budget: validation.Budget = validation.CALL
    check: Optional[Callable[[dict], None]] = None
    handler: str = ''
    who: str = ''

    def __post_init__(self):
        object.__setattr__(self, 'arguments', tuple(self.arguments))
        if not self.handler:
            object.__setattr__(self, 'handler', self.name)
        if not self.who:
            object.__setattr__(self, 'who', scheme.ANYONE if self.read_only
                               else scheme.CONDUCTOR)
        if self.who not in scheme.WHO:
            raise ValueError(f'{self.name}: who={self.who!r} is not one of '
                             f'{scheme.WHO}')

    def argument(self, name: str) -> Argument:
        return next(arg for arg in self.arguments if arg.name == name)


class Table:
    def __init__(self, service: str, methods):
        self.service = service
        self.methods = {method.name: method for method in methods}
        for method in self.methods.values():
            for arg in method.arguments:
                if arg.since != BASE_VERSION and arg.required:
                    # A caller of the older version cannot send it.
                    raise ValueError(f'{method.name}: {arg.name}, added in '
                                     f'{arg.since}, must have a default')
        self._schemas = {
            (method.name, arg.name): validation.Schema(arg.schema)
            for method in self.methods.values() for arg in method.arguments}

    def __getitem__(self, name: str) -> Method:
        return self.methods[name]

    def __contains__(self, name: str) -> bool:
        return name in self.methods

    def __iter__(self):
        return iter(self.methods.values())

    # -- validation -----------------------------------------------------------

    def validate(self, name: str, arguments: dict) -> dict:
        """The arguments, defaults added, or InvalidInput naming the first
        bad one; nothing of the call has run yet."""
        method = self.methods.get(name)
        if method is None:
            raise exception.InvalidInput(
                reason=f'{validation.short(name)} is not a method of '
                       f'{self.service}')
        known = {arg.name for arg in method.arguments}
        unknown = [key for key in arguments if key not in known]
        if unknown:
            more = f' (and {len(unknown) - 1} more)' if len(unknown) > 1 else ''
            raise validation.invalid(
                [min(unknown)], f'is not an argument of {name}{more}')
        for arg in method.arguments:
            if arg.required and arg.name not in arguments:
                raise validation.invalid([arg.name], 'is required')
        validation.check_bounds(arguments, method.budget)
        complete = {}
        for arg in method.arguments:
            if arg.name in arguments:
                value = arguments[arg.name]
                self._schemas[name, arg.name].validate(value, [arg.name])
            else:
                # A copy: a handler may keep or change what it is given.
                value = copy.deepcopy(arg.default)
            complete[arg.name] = value
        if method.check is not None:
            method.check(complete)
        return complete

    def schema(self, name: str) -> dict:
        """The JSON schema of the method's arguments, as one object."""
        method = self.methods[name]
        return {'type': 'object',
                'properties': {a.name: a.schema for a in method.arguments},
                'required': [a.name for a in method.arguments if a.required],
                'additionalProperties': False}

    # -- versions -------------------------------------------------------------

    @property
    def version(self) -> str:
        """The newest version: what the endpoint serves, and every older."""
        return max((arg.since for method in self for arg in method.arguments),
                   key=version_tuple, default=BASE_VERSION)

    @property
    def versions(self) -> list:
        """Every version of the API, oldest first."""
        found = {BASE_VERSION, *(arg.since for method in self
                                 for arg in method.arguments)}
        return sorted(found, key=version_tuple)

    def as_of(self, version: str) -> 'Table':
        """The table as the release speaking ``version`` had it."""
        newest = version_tuple(version)
        return Table(self.service, [
            dataclasses.replace(method, arguments=[
                arg for arg in method.arguments
                if version_tuple(arg.since) <= newest])
            for method in self])

    def downgrade(self, name: str, arguments: dict,
                  cap: Optional[str] = None) -> tuple:
        """(version to send, arguments) for a peer that speaks up to ``cap``.

        The version is the lowest that the arguments sent need, so that a
        call that uses nothing new reaches any peer; arguments newer than
        ``cap`` are left out (they are optional, and the older peer would
        refuse them as unknown).
        """
        method = self.methods[name]
        since = {arg.name: version_tuple(arg.since) for arg in method.arguments}
        if cap is not None:
            limit = version_tuple(cap)
            arguments = {key: value for key, value in arguments.items()
                         if since.get(key, (0, 0)) <= limit}
        needed = max((since.get(key, (0, 0)) for key in arguments),
                     default=version_tuple(BASE_VERSION))
        needed = max(needed, version_tuple(BASE_VERSION))
        return f'{needed[0]}.{needed[1]}', arguments

    # -- what is derived ------------------------------------------------------

    def endpoint(self, cls):
        """Class decorator: one exposed method per row, served by
        ``cls._serve(name, context, arguments)``."""
        for method in self:
            if method.name in vars(cls):
                raise TypeError(f'{cls.__name__}.{method.name} is derived '
                                f'from the table of {self.service}; do not '
                                'define it')
            setattr(cls, method.name, _endpoint_method(method))
        return cls

    def signature(self, name: str) -> str:
        """``update_migration(migration_uuid, status, migration=None)``."""
        method = self.methods[name]
        parts = [arg.name if arg.required else f'{arg.name}={arg.default!r}'
                 for arg in method.arguments]
        return f'{name}({", ".join(parts)})'

    def check_client(self, cls, leading=('context',), client_only=None):
        """Raise TypeError where ``cls`` and the table disagree.

        Each row needs a method ``name(self, *leading, <arguments>)``: the
        table's arguments in its order, a default exactly where the table has
        one; ``client_only`` lists, per method, keyword parameters of the
        client's own (a timeout) that follow them.
        """
        client_only = client_only or {}
        public = {name for name, _ in inspect.getmembers(cls, inspect.isfunction)
                  if not name.startswith('_')}
        for method in self:
            func = getattr(cls, method.name, None)
            if func is None:
                raise TypeError(f'{cls.__name__} has no {method.name}')
            params = list(inspect.signature(func).parameters.values())[1:]
            names = [p.name for p in params]
            expected = [*leading, *(a.name for a in method.arguments),
                        *client_only.get(method.name, ())]
            if names != expected:
                raise TypeError(f'{cls.__name__}.{method.name}{tuple(names)} '
                                f'is not {tuple(expected)} as in the table')
            for param, arg in zip(params[len(leading):], method.arguments):
                if (param.default is REQUIRED) != arg.required:
                    raise TypeError(f'{cls.__name__}.{method.name}: '
                                    f'{arg.name} must be '
                                    f'{"required" if arg.required else "optional"}')
            public.discard(method.name)
        extra = public - set(getattr(cls, 'NOT_RPC', ()))
        if extra:
            raise TypeError(f'{cls.__name__} has methods the table of '
                            f'{self.service} does not list: {sorted(extra)}')


def _endpoint_method(method: Method):
    name = method.name

    # Positional-only: an argument named "context" or "self" lands in
    # ``arguments`` and is refused by name, not by Python.
    def serve(self, context, /, **arguments):
        return self._serve(name, context, arguments)

    serve.__name__ = serve.__qualname__ = name
    serve.__doc__ = f'RPC method ``{name}``, served by ``_serve``.'
    serve.exposed = True    # what oslo.messaging's ExplicitRPCAccessPolicy asks
    return serve
