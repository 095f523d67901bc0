"""us-east-1 (global): CloudFront in front of the static buckets (an origin group that fails over
from the primary region's bucket to the standby's) and of the API (seeds 002 and 003): the API's
paths go, uncached and with every viewer header but Host, to `<domain>`, which Route 53 answers
with the Region the failover or latency record picks. AWS WAF (managed rules and a rate limit
per IP) guards both; an API Gateway HTTP API cannot take a web ACL itself."""

from __future__ import annotations

from typing import Any

from aws_cdk import SecretValue, Stack
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from constructs import Construct

from regionguard.infra.stacks.common import secure_bucket
from regionguard.infra.stacks.nag import justify
from regionguard.infra.stacks.waf import web_acl
from regionguard.infra.view import AwsView

API_PATHS = ("/orders", "/orders/*", "/health*")  # the app's routes: never cached
ORIGIN_HEADER = "X-Regionguard-Origin"  # app/origin.py checks it


class EdgeStack(Stack):
    def __init__(self, scope: Construct, id: str, *, view: AwsView, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        n = view.names

        def origin(region: str) -> cloudfront.IOrigin:
            bucket = s3.Bucket.from_bucket_attributes(
                self, f"Static-{region}", bucket_name=n.static_bucket(region), region=region)
            return origins.S3BucketOrigin.with_origin_access_control(bucket)

        logs = secure_bucket(self, "CdnLogs", for_logs=True)
        self.web_acl = web_acl(self, "Waf", name=f"{n.app}-edge", waf_scope="CLOUDFRONT",
                               rate_limit=view.settings.waf_rate_limit)
        api = cloudfront.BehaviorOptions(
            origin=origins.HttpOrigin(
                view.settings.domain, protocol_policy=cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
                # a dynamic reference, resolved by CloudFormation from the secret's us-east-1
                # copy: the value is in neither the template nor the repo. It replaces any
                # viewer header of the same name.
                custom_headers={ORIGIN_HEADER: SecretValue.secrets_manager(
                    n.origin_secret()).unsafe_unwrap()}),
            viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
            allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
            cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
            origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER)
        self.distribution = cloudfront.Distribution(
            self, "Cdn",
            comment=f"{n.app} static content and API",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.OriginGroup(
                    primary_origin=origin(view.primary.aws_region),
                    fallback_origin=origin(view.standby.aws_region),
                    fallback_status_codes=[500, 502, 503, 504, 403, 404]),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS),
            additional_behaviors={path: api for path in API_PATHS},
            minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
            enable_logging=True, log_bucket=logs, web_acl_id=self.web_acl.attr_arn,
        )
        justify(self.distribution, {
            "AwsSolutions-CFR1": "a global application: no geo restriction by design",
            "AwsSolutions-CFR4": "the default *.cloudfront.net certificate negotiates TLS 1.2+; "
                                 "an alias domain brings its ACM certificate (us-east-1)",
            "AwsSolutions-CFR7": "origins use Origin Access Control (OAC), the successor of OAI",
        })
