"""Notifications when a deployment ends: webhooks and email
(:mod:`~deploy_plugin.notify.notifier`, built on ``pytest_deploy_finished`` like any
extension), what they say (:mod:`~deploy_plugin.notify.format`) and SMTP
(:mod:`~deploy_plugin.notify.email`)."""
