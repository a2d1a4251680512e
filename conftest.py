"""Thin: the plugin lives in fixtures/linkerd_conformance (also a `pytest11` entry point)."""

pytest_plugins = ["linkerd_conformance.plugin"]
