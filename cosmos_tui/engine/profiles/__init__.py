"""Model profiles: how each Cosmos family is launched."""
