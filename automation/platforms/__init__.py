"""Platform connectors (Messenger, Instagram, WhatsApp) behind PlatformConnector."""
