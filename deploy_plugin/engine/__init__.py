"""The engine: a deployment without pytest (DESIGN §7).

The stop policy, the run recorder (every store write), shell steps and psql safety, the
health check, parallel runs, signals, the runner's guard over step process groups, and one
deployment's state while it runs. Nothing here imports pytest; :mod:`deploy_plugin.plugin`
adapts it to pytest's items and hooks.
"""
