"""Message processing, the workflow engine and its actions."""
