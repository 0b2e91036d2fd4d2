"""The pytest adapters of pytest-deploy (DESIGN §7): the ``pytest11`` entry point
(:mod:`~deploy_plugin.plugin.hooks`) and the hook groups it registers (selection, running,
finish), options, collectors, items and steps, preflight, smoke tests, the one reporter,
xdist, fixtures and the typed hookspecs.
"""
