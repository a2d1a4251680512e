"""The cluster double: a Kubernetes API server (and fake tools) backed by a reference mesh.

See README.md in this directory for the contract.
"""
