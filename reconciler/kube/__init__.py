"""The Kubernetes target's parts: the API client with retries, and the apply order."""
