"""Who is speaking: signed RPC messages (issue 18, ``doc/source/security.rst``).

- ``canonical``: the RFC 8785 form of JSON values that signatures cover;
- ``scheme``: what is signed and how it is checked (pure);
- ``keys``: key files, the keyring of known principals;
- ``guard``: the receiving side of every RPC endpoint;
- ``caller``: the calling side of every RPC client;
- ``config``: ``[identity]`` into a guard and a caller.
"""
