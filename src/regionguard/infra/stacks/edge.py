"""us-east-1 (global): CloudFront in front of the static buckets, with an origin group that
fails over from the primary region's bucket to the standby's."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from constructs import Construct

from regionguard.infra.stacks.common import secure_bucket
from regionguard.infra.stacks.nag import justify
from regionguard.infra.view import AwsView


class EdgeStack(Stack):
    def __init__(self, scope: Construct, id: str, *, view: AwsView, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        n = view.names

        def origin(region: str) -> cloudfront.IOrigin:
            bucket = s3.Bucket.from_bucket_attributes(
                self, f"Static-{region}", bucket_name=n.static_bucket(region), region=region)
            return origins.S3BucketOrigin.with_origin_access_control(bucket)

        logs = secure_bucket(self, "CdnLogs", for_logs=True)
        self.distribution = cloudfront.Distribution(
            self, "Cdn",
            comment=f"{n.app} static content",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.OriginGroup(
                    primary_origin=origin(view.primary.aws_region),
                    fallback_origin=origin(view.standby.aws_region),
                    fallback_status_codes=[500, 502, 503, 504, 403, 404]),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS),
            minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
            enable_logging=True, log_bucket=logs,
        )
        justify(self.distribution, {
            "AwsSolutions-CFR1": "a global application: no geo restriction by design",
            "AwsSolutions-CFR2": "static, public, cache-only content; attach the account's WAF "
                                 "web ACL (a per-organisation choice) with web_acl_id",
            "AwsSolutions-CFR4": "the default *.cloudfront.net certificate negotiates TLS 1.2+; "
                                 "an alias domain brings its ACM certificate (us-east-1)",
            "AwsSolutions-CFR7": "origins use Origin Access Control (OAC), the successor of OAI",
        })
