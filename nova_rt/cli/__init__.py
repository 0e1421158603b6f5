"""The ``nova-rt`` operator CLI (entry point ``nova_rt.cmd.cli:main``).

``output`` and ``views`` (tables, JSON, YAML, usage bars) and ``payloads``
(arguments and RPC payloads) are pure; ``clients`` is the thin RPC adapter;
``commands`` holds the argparse tree and one small handler per command.
"""
