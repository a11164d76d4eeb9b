"""Stage 4: lint rules over the model, with severities, suppressions and configuration."""
