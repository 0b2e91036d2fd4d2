"""The pytest adapters of pytest-deploy (DESIGN §7): the hook implementations
(:mod:`~deploy_plugin.plugin.hooks`, the ``pytest11`` entry point), options, collectors,
items, preflight, smoke tests, the one reporter, xdist, fixtures and the typed hookspecs.
"""
