"""The automation package: plain synchronous Python that turns platform events into replies."""
