"""Business-tool integrations (Slack, e-mail, CRM, helpdesk, analytics), one module each."""
