"""The engine: a deployment without pytest (DESIGN §7).

One deployment's state while it runs (``runtime``: its steps as references, the stop
``policy``, its run through the ``host`` protocol) and its migrations side
(``migrations``: the databases' ``ledgers``, the history, ``schema_drift``); what it did
(``results``: frozen step results and the report) and how extensions see it (``views``);
the preflight ``checks`` and ``migration_checks``; ``atomic`` undo, ``rollback`` and the
``reversibility`` check; every store write (``recorder``); shell steps (``shell``, the
running ``process`` and its ``output``, ``psql`` safety, ``procgroups`` and the runner's
``guard``, ``signals``), step logs (``logs``, ``steplogs``), ``parallel`` runs, the
``health`` check; ``errors`` shown as one paragraph. Nothing here imports pytest (or the
layers above: tests/test_layout.py holds it); :mod:`deploy_plugin.plugin` adapts it to
pytest's items and hooks.
"""
