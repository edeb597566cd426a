"""Stripe billing tests."""
