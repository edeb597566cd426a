"""Database connectors: named, parameterised, read-only lookups in the business's own data."""
