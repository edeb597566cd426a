"""Slack integration tests: connector, /api/slack, Slack events and interactions, demo."""
