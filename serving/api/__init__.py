"""HTTP API controllers: each handler is a few lines over `TwinService`."""
