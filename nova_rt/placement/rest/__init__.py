"""Placement's REST API on nova-rt-placement (issue 17).

``app`` (the WSGI application: requests, microversions, errors, request ids,
auth assembly), ``routes`` (the route table), ``microversion``, ``errors``
(Placement's error codes), ``auth`` (noauth2 and keystonemiddleware),
``policy`` (oslo.policy rules with Placement's names), ``handlers`` (one
module per noun), ``schemas`` (JSON schemas per microversion), ``wsgi``
(the module-level ``application`` and the ``nova-rt-placement-api``
script).  Operations run in one transaction on the path the RPC API uses
(``placement.transaction``).
"""
