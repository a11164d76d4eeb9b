"""Stage 6: findings and results to text, json, sarif, github annotations and junit."""
