"""Reports of deployments that need no pytest: the JSON report file
(:mod:`~deploy_plugin.report.json_report`) and the HTML history page
(:mod:`~deploy_plugin.report.html`). The terminal summary and JUnit naming are pytest's
side: :mod:`deploy_plugin.plugin.summary`."""
