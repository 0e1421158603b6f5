"""The release of nova_rt, as pbr reads it from the installed package
(``setup.cfg`` and git tags at build time), for every command's ``--version``."""

import pbr.version

version_info = pbr.version.VersionInfo('nova_rt')


def version_string() -> str:
    return version_info.version_string()
