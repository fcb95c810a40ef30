"""The fake QuickBooks Online of the sandbox."""
