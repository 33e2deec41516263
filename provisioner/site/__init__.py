"""The site file: loading with positions, the frozen model, validation."""
