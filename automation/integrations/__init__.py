"""Integrations (Slack, e-mail, CRM, databases) behind IntegrationConnector."""
