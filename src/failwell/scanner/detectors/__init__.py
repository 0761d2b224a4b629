"""Built-in detectors: one module per failure family, small and side-effect free."""
