"""Where the reconciler reads revisions from: a Git repository (`git.py`), its commit
signature policy (`signatures.py`) and the webhook that asks for a fetch (`webhook.py`)."""
