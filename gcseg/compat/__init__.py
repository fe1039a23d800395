"""Small compatibility shims for third-party packages (each one documented where it is defined)."""
