"""Which AWS API call an HTTP request is: service, operation, and whether it mutates a control
plane. The fault proxy needs it for its request log and for control-plane outages.

The service comes from the SigV4 credential scope; the operation from the protocol botocore
used: `X-Amz-Target` (JSON), `Action=` (query), the Smithy RPC v2 path (CBOR), or, for REST
services (Route 53, Lambda), the botocore model's request URIs.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from urllib.parse import parse_qs

import botocore.session

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
_RPC_V2 = re.compile(r"/service/[^/]+/operation/([A-Za-z0-9]+)")
READ_PREFIXES = ("Describe", "List", "Get", "Query", "Scan", "BatchGet", "Check", "Test",
                 "Search", "Lookup")
# operations that are data planes (AWS's own split), not control planes: they keep working in
# a control-plane outage
DATA_PLANE = {
    "dynamodb": {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan",
                 "BatchGetItem", "BatchWriteItem", "TransactGetItems", "TransactWriteItems"},
    "monitoring": {"PutMetricData", "GetMetricData", "GetMetricStatistics"},
    "sns": {"Publish", "PublishBatch"},
    "lambda": {"Invoke"},
}
SIGNING_TO_SERVICE = {"monitoring": "cloudwatch", "elasticloadbalancing": "elbv2"}


@dataclass(frozen=True, slots=True)
class Call:
    service: str  # the signing name (dynamodb, rds, monitoring, route53, ...)
    operation: str
    region: str  # the signing Region

    @property
    def mutating(self) -> bool:
        return not self.operation.startswith(READ_PREFIXES)

    @property
    def data_plane(self) -> bool:
        """The app's own traffic is data plane, and so are AWS's data-plane operations."""
        return self.service == "app" or self.operation in DATA_PLANE.get(self.service, set())

    @property
    def control_mutation(self) -> bool:
        return self.mutating and not self.data_plane


@functools.cache
def _rest_routes(service: str) -> tuple[tuple[str, re.Pattern[str], int, str], ...]:
    """(method, path regex, literal length, operation) for a REST service, longest first."""
    name = SIGNING_TO_SERVICE.get(service, service)
    try:
        model = botocore.session.get_session().get_service_model(name)
    except Exception:
        return ()
    routes = []
    for op in model.operation_names:
        http = model.operation_model(op).http
        uri = http.get("requestUri", "/").split("?")[0]
        literal = len(re.sub(r"\{[^}]+\}", "", uri))
        pattern = re.escape(uri)
        pattern = re.sub(r"\\\{[^}]+\\\+\\\}", ".+", pattern)
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", pattern)
        routes.append((http.get("method", "POST"), re.compile(f"^{pattern}/?$"), literal, op))
    return tuple(sorted(routes, key=lambda r: -r[2]))


def classify(method: str, path: str, headers: dict[str, str], body: bytes) -> Call:
    auth = headers.get("authorization", "")
    scope = _SCOPE.search(auth)
    region, service = (scope.group(1), scope.group(2)) if scope else ("?", "?")
    target = headers.get("x-amz-target")
    if target:
        return Call(service, target.rsplit(".", 1)[-1], region)
    rpc = _RPC_V2.search(path)
    if rpc:
        return Call(service, rpc.group(1), region)
    bare, _, query = path.partition("?")
    form = parse_qs(query)
    if "Action" not in form and body and b"Action=" in body[:4096]:
        form = parse_qs(body.decode("utf-8", "replace"))
    if "Action" in form:
        return Call(service, form["Action"][0], region)
    for verb, pattern, _, op in _rest_routes(service):
        if verb == method and pattern.match(bare):
            return Call(service, op, region)
    return Call(service, f"{method} {bare}", region)
