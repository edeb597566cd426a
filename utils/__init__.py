"""Cross-cutting infrastructure: settings, auth, errors, crypto, store, realtime."""
