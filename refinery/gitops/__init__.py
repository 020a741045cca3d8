"""The GitHub side: the REST API (PyGithub), reconcile, Actions workflow-command output."""
