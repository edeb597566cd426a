"""HTTP blueprints; each view is a thin adapter over one service call."""
