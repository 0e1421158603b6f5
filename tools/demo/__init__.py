"""The quick start's demo (``python -m tools.demo`` from the repository's
root; ``tools/quickstart.sh`` runs it): placement and two compute daemons
driven through the ``nova-rt`` CLI.  Not part of the installed package."""
