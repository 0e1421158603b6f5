"""The ``nova-rt`` operator CLI (entry point ``nova_rt.cmd.cli:main``), also
``openstack rt`` through ``osc_plugin``.

``output`` and ``views`` (columns, cell text, usage bars) and ``payloads``
(arguments and RPC payloads) are pure; ``clients`` is the thin RPC adapter and
``connect`` finds its settings; ``commands`` holds one small cliff class per
command on the bases of ``base``; ``app`` is the ``nova-rt`` cliff application.
"""
