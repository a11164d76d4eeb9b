"""The mesh certificate authority: workload certificates and zero-downtime root rotation.

Git holds the public side (`Mesh.spec.ca`); the key store (`store.py`) holds the private
side. `issue.py` makes certificates, `rotation.py` runs the root rotation state machine,
`outputs.py` builds what targets consume (Istio `cacerts`, SPIFFE bundle, PEM bundle),
`status.py` reports and exports metrics, `meshfile.py` proposes the Git edit.
"""
