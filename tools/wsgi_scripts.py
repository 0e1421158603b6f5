"""Write the pbr ``wsgi_scripts`` of the installed nova_rt into the venv.

``pip install -e .`` (PEP 660) installs the entry points but, unlike a
wheel install, writes no pbr WSGI script (pbr makes them only in its
``install_scripts`` of a wheel build).  This writes each one with pbr's own
generator and template, so that ``nova-rt-placement-api`` is the same file
a wheel install gives.  Run with the venv's python; safe to run again.
"""

import importlib.metadata
import os
import sys
import types

from pbr._compat import easy_install


def main() -> int:
    bindir = os.path.dirname(sys.executable)
    header = f'#!{sys.executable}\n'
    template = easy_install.ENTRY_POINTS_MAP['wsgi_scripts']
    for ep in importlib.metadata.distribution('nova_rt').entry_points:
        if ep.group != 'wsgi_scripts':
            continue
        target = types.SimpleNamespace(module_name=ep.module,
                                       attrs=tuple(ep.attr.split('.')))
        text = easy_install.generate_script('wsgi_scripts', target, header,
                                            template)
        path = os.path.join(bindir, ep.name)
        with open(path, 'w') as script:
            script.write(text)
        os.chmod(path, 0o755)
        print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
