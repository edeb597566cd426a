"""Business-tool integrations: Slack, e-mail, CRM, helpdesk and analytics connectors."""
