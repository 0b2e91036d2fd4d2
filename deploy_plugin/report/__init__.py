"""Reports of deployments: the terminal summary, the JSON report and JUnit properties
(:mod:`~deploy_plugin.report.summary`) and the HTML history page
(:mod:`~deploy_plugin.report.html`)."""
