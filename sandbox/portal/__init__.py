"""The fake billing portal of the sandbox."""
