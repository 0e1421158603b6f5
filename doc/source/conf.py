# Sphinx configuration of the nova_rt documentation. Builds offline: oslo.config's
# extension reads the options from the installed
# entry points (pip install -e . first) and autodoc imports the modules.

project = 'nova_rt'
copyright = 'nova_rt developers'
author = 'nova_rt developers'

extensions = [
    'oslo_config.sphinxext',
    'sphinx.ext.autodoc',
]

master_doc = 'index'
exclude_patterns = []
pygments_style = 'sphinx'
html_theme = 'alabaster'
html_static_path = []
# No intersphinx or other network lookups: the build must work offline.
