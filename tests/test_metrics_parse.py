"""`Metrics.parse` reads a proxy's metrics page with prometheus_client and keeps sample names."""

from __future__ import annotations

import pytest

from linkerd_conformance.api import Metrics, Sample

#: What `linkerd diagnostics proxy-metrics` prints: the CLI's banner, then the proxy's page
#: (legacy families with `_total` in HELP/TYPE, an OpenMetrics-style family without it).
PAGE = """#
# POD web-1 (1 of 1)
#
# HELP inbound_http_authz_allow_total The total number of inbound HTTP requests that were authorized
# TYPE inbound_http_authz_allow_total counter
inbound_http_authz_allow_total{target_port="8080",authz_name="all-in, ok",tls="true"} 2
inbound_http_authz_allow_total{target_port="9090",authz_name="grpc",tls="true"} 3
# TYPE inbound_http_authz_deny_total counter
inbound_http_authz_deny_total{target_port="8080",srv_name="web"} 1
# HELP outbound_http_route_request_statuses Completed responses.
# TYPE outbound_http_route_request_statuses counter
outbound_http_route_request_statuses_total{http_status="200"} 7
response_latency_ms_bucket{direction="inbound",le="10"} 4
process_cpu_seconds_total 1.5
# EOF
"""


def test_samples_keep_their_printed_names_and_labels() -> None:
    m = Metrics.parse(PAGE)
    assert [s.name for s in m.samples] == [
        "inbound_http_authz_allow_total", "inbound_http_authz_allow_total",
        "inbound_http_authz_deny_total", "outbound_http_route_request_statuses_total",
        "response_latency_ms_bucket", "process_cpu_seconds_total"]
    assert m.samples[0] == Sample("inbound_http_authz_allow_total",
                                  {"target_port": "8080", "authz_name": "all-in, ok",
                                   "tls": "true"}, 2.0)
    assert all(isinstance(s.value, float) for s in m.samples)


def test_value_sums_the_samples_whose_labels_include_the_given_ones() -> None:
    m = Metrics.parse(PAGE)
    assert m.value("inbound_http_authz_allow_total") == 5.0
    assert m.value("inbound_http_authz_allow_total", target_port="8080") == 2.0
    assert m.value("inbound_http_authz_allow_total", target_port="1") == 0.0
    assert m.value("inbound_http_authz_deny_total", srv_name="web") == 1.0
    assert m.value("outbound_http_route_request_statuses_total") == 7.0
    assert m.value("response_latency_ms_bucket", le="10") == 4.0
    assert m.value("inbound_http_authz_allow") == 0.0  # the family's name is no sample's


def test_a_page_of_only_comments_has_no_samples() -> None:
    assert Metrics.parse("# HELP a_total x\n# TYPE a_total counter\n\n").samples == []


def test_malformed_text_raises() -> None:
    with pytest.raises(ValueError):
        Metrics.parse('inbound_http_authz_allow_total{target_port="8080" 1\n')
