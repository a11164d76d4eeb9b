"""Checking the intents against the application's own Kubernetes manifests (`--workloads`).

`sources` reads the manifest files, `manifests` turns them into the plain objects of
`objects`, and the checks (`*_checks.py`, registered in `registry`) are functions of the
model and those objects alone, so a reconciler can feed them live objects from a cluster.
`queries` runs them inside the incremental engine.
"""
