"""The fake Slack of the sandbox."""
