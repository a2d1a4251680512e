"""Linkerd 2.11's policy CRD rules (policy.linkerd.io/v1beta1) as JSON schemas.

Written from research/linkerd-semantics.md F2.2, F2.3 and F3.3-F3.6, which follow
`charts/linkerd2/templates/policy-crd.yaml` at stable-2.11.0. They are the strictest CRD rules
any supported version has (2.12+ dropped some `oneOf`s and the proxyProtocol enum), so a
manifest that passes them applies on every version. Kept apart from the admission module on
purpose: two independent readings of the same facts.
"""

from __future__ import annotations

from typing import Any

#: F3.6
IDENTITY_PATTERN = r"^(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

_LABEL_SELECTOR: dict[str, Any] = {
    "type": "object",
    # F2.2: matchLabels xor matchExpressions (`matchLabels: {}` selects every pod)
    "oneOf": [{"required": ["matchExpressions"]}, {"required": ["matchLabels"]}],
    "properties": {
        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "matchExpressions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", "operator"],
                "properties": {
                    "key": {"type": "string"},
                    "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                    "values": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}

_METADATA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}},
}

SERVER: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "policy.linkerd.io/v1beta1"},
        "kind": {"const": "Server"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "required": ["podSelector", "port"],  # F2.2
            "additionalProperties": False,
            "properties": {
                "podSelector": _LABEL_SELECTOR,
                # a number or a container-port name
                "port": {"oneOf": [{"type": "integer", "minimum": 1, "maximum": 65535},
                                   {"type": "string", "minLength": 1}]},
                # F2.3
                "proxyProtocol": {"enum": ["unknown", "HTTP/1", "HTTP/2", "gRPC", "opaque",
                                           "TLS"]},
            },
        },
    },
}

SERVER_AUTHORIZATION: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "policy.linkerd.io/v1beta1"},
        "kind": {"const": "ServerAuthorization"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "required": ["server", "client"],
            "additionalProperties": False,
            "properties": {
                "server": {  # F3.3: exactly one of name / selector
                    "type": "object",
                    "additionalProperties": False,
                    "oneOf": [{"required": ["name"]}, {"required": ["selector"]}],
                    "properties": {
                        "name": {"type": "string", "pattern": NAME_PATTERN},
                        "selector": _LABEL_SELECTOR,
                    },
                },
                "client": {  # F3.4: exactly one of unauthenticated / meshTLS, plus networks
                    "type": "object",
                    "additionalProperties": False,
                    "oneOf": [{"required": ["meshTLS"]}, {"required": ["unauthenticated"]}],
                    "properties": {
                        "unauthenticated": {"type": "boolean"},
                        "networks": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["cidr"],
                                "additionalProperties": False,
                                "properties": {
                                    "cidr": {"type": "string"},
                                    "except": {"type": "array", "items": {"type": "string"}},
                                },
                            },
                        },
                        "meshTLS": {  # F3.5: exactly one of the three
                            "type": "object",
                            "additionalProperties": False,
                            "oneOf": [{"required": ["unauthenticatedTLS"]},
                                      {"required": ["identities"]},
                                      {"required": ["serviceAccounts"]}],
                            "properties": {
                                "unauthenticatedTLS": {"type": "boolean"},
                                "identities": {  # F3.6
                                    "type": "array",
                                    "items": {"type": "string", "pattern": IDENTITY_PATTERN},
                                },
                                "serviceAccounts": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["name"],
                                        "additionalProperties": False,
                                        "properties": {
                                            "name": {"type": "string",
                                                     "pattern": NAME_PATTERN},
                                            "namespace": {"type": "string",
                                                          "pattern": NAME_PATTERN},
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}

BY_KIND: dict[str, dict[str, Any]] = {
    "Server": SERVER,
    "ServerAuthorization": SERVER_AUTHORIZATION,
}
