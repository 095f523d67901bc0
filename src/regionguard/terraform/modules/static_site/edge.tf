# The edge (us-east-1): CloudFront, its access-log bucket and its web ACL.

locals {
  # AWS managed policies (their IDs are fixed by AWS): no lookup, so a plan needs no API call
  caching_optimized      = "658327ea-f89d-4fab-a63d-7e88639e58f6"
  caching_disabled       = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
  all_viewer_except_host = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
  api_paths              = ["/orders", "/orders/*", "/health*"] # the app's routes: never cached
}

resource "aws_s3_bucket" "cdn_logs" {
  #checkov:skip=CKV_AWS_18:this is the access-log bucket itself; logging it into itself would loop
  #checkov:skip=CKV_AWS_21:log objects are written once and expire after 90 days; versions would only keep deleted logs
  #checkov:skip=CKV_AWS_144:CloudFront's logs stay in us-east-1; replicating them adds nothing to recovery
  #checkov:skip=CKV_AWS_145:CloudFront standard logs are delivered to SSE-S3 buckets (SSE-KMS needs a key policy for the log delivery account)
  #checkov:skip=CKV2_AWS_62:nothing consumes events of the log bucket
  provider      = aws.global
  count         = length(local.edge)
  bucket_prefix = "${var.app_name}-cdn-logs-"
}

resource "aws_s3_bucket_public_access_block" "cdn_logs" {
  provider                = aws.global
  count                   = length(local.edge)
  bucket                  = aws_s3_bucket.cdn_logs[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# CloudFront's standard logging writes through object ACLs: they must stay enabled here
resource "aws_s3_bucket_ownership_controls" "cdn_logs" {
  #checkov:skip=CKV2_AWS_65:CloudFront standard logging delivers with object ACLs, which BucketOwnerEnforced disables
  provider = aws.global
  count    = length(local.edge)
  bucket   = aws_s3_bucket.cdn_logs[0].id
  rule {
    object_ownership = "BucketOwnerPreferred"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "cdn_logs" {
  provider = aws.global
  count    = length(local.edge)
  bucket   = aws_s3_bucket.cdn_logs[0].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "cdn_logs" {
  provider = aws.global
  count    = length(local.edge)
  bucket   = aws_s3_bucket.cdn_logs[0].id
  rule {
    id     = "expire"
    status = "Enabled"
    filter {}
    expiration {
      days = 90
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_s3_bucket_policy" "cdn_logs" {
  provider = aws.global
  count    = length(local.edge)
  bucket   = aws_s3_bucket.cdn_logs[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "TlsOnly"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [aws_s3_bucket.cdn_logs[0].arn, "${aws_s3_bucket.cdn_logs[0].arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })
  depends_on = [aws_s3_bucket_public_access_block.cdn_logs]
}

resource "aws_wafv2_web_acl" "edge" {
  #checkov:skip=CKV2_AWS_31:request logging is not set up by the CDK app either; the rules' CloudWatch metrics and sampled requests are on
  provider = aws.global
  count    = length(local.edge)
  name     = "${var.app_name}-edge"
  scope    = "CLOUDFRONT"

  default_action {
    allow {}
  }

  # AWS managed rule groups: common exploits, known bad inputs (Log4j among them), IP reputation
  dynamic "rule" {
    for_each = local.managed_rule_groups
    content {
      name     = rule.value
      priority = rule.key
      override_action {
        none {}
      }
      statement {
        managed_rule_group_statement {
          vendor_name = "AWS"
          name        = rule.value
        }
      }
      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = rule.value
        sampled_requests_enabled   = true
      }
    }
  }

  rule {
    name     = "RatePerIp"
    priority = 3
    action {
      block {}
    }
    statement {
      rate_based_statement {
        limit              = var.edge.waf_rate_limit
        aggregate_key_type = "IP"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "RatePerIp"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${var.app_name}-edge"
    sampled_requests_enabled   = true
  }
}

resource "aws_cloudfront_origin_access_control" "static" {
  provider                          = aws.global
  for_each                          = toset(var.edge == null ? [] : ["primary", "standby"])
  name                              = "${var.app_name}-static-${each.key}"
  description                       = "regionguard: CloudFront reads the ${each.key} region's static bucket"
  origin_access_control_origin_type = "s3"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}

resource "aws_cloudfront_response_headers_policy" "security" {
  provider = aws.global
  count    = length(local.edge)
  name     = "${var.app_name}-security-headers"
  comment  = "regionguard: HSTS, nosniff, frame and referrer policies on every answer"

  security_headers_config {
    strict_transport_security {
      access_control_max_age_sec = 31536000
      include_subdomains         = true
      preload                    = true
      override                   = true
    }
    content_type_options {
      override = true
    }
    frame_options {
      frame_option = "DENY"
      override     = true
    }
    referrer_policy {
      referrer_policy = "strict-origin-when-cross-origin"
      override        = true
    }
  }
}

resource "aws_cloudfront_distribution" "this" {
  #checkov:skip=CKV2_AWS_47:Log4j's exploits are matched by AWSManagedRulesKnownBadInputsRuleSet, which the web ACL has; the check also demands AWSManagedRulesAnonymousIpList, which would block VPN and hosting-provider clients (the CDK app's web ACL does not block them either)
  #checkov:skip=CKV_AWS_374:a global application: no geo restriction by design
  #checkov:skip=CKV_AWS_174:the default *.cloudfront.net certificate negotiates TLS 1.2+; an alias domain brings its ACM certificate (us-east-1) and minimum_protocol_version with it
  #checkov:skip=CKV2_AWS_42:the default *.cloudfront.net certificate until you give the distribution your public name (as in the CDK app)
  provider            = aws.global
  count               = length(local.edge)
  enabled             = true
  comment             = "${var.app_name} static content and API"
  default_root_object = "index.html"
  web_acl_id          = aws_wafv2_web_acl.edge[0].arn
  price_class         = "PriceClass_All"

  origin {
    origin_id                = "static-primary"
    domain_name              = var.edge.primary_bucket_domain
    origin_access_control_id = aws_cloudfront_origin_access_control.static["primary"].id
  }

  origin {
    origin_id                = "static-standby"
    domain_name              = var.edge.standby_bucket_domain
    origin_access_control_id = aws_cloudfront_origin_access_control.static["standby"].id
  }

  # the API: <domain>, which Route 53 resolves to a Region; the origin header (a secret) proves
  # a request passed this distribution's web ACL
  origin {
    origin_id   = "api"
    domain_name = var.edge.domain
    custom_origin_config {
      http_port              = 80
      https_port             = 443
      origin_protocol_policy = "https-only"
      origin_ssl_protocols   = ["TLSv1.2"]
    }
    custom_header {
      name  = var.edge.origin_header_name
      value = var.origin_header_value
    }
  }

  origin_group {
    origin_id = "static"
    failover_criteria {
      status_codes = [403, 404, 500, 502, 503, 504]
    }
    member {
      origin_id = "static-primary"
    }
    member {
      origin_id = "static-standby"
    }
  }

  default_cache_behavior {
    target_origin_id           = "static"
    allowed_methods            = ["GET", "HEAD"]
    cached_methods             = ["GET", "HEAD"]
    viewer_protocol_policy     = "redirect-to-https"
    cache_policy_id            = local.caching_optimized
    response_headers_policy_id = aws_cloudfront_response_headers_policy.security[0].id
    compress                   = true
  }

  dynamic "ordered_cache_behavior" {
    for_each = local.api_paths
    content {
      path_pattern               = ordered_cache_behavior.value
      target_origin_id           = "api"
      allowed_methods            = ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"]
      cached_methods             = ["GET", "HEAD"]
      viewer_protocol_policy     = "redirect-to-https"
      cache_policy_id            = local.caching_disabled
      origin_request_policy_id   = local.all_viewer_except_host
      response_headers_policy_id = aws_cloudfront_response_headers_policy.security[0].id
    }
  }

  logging_config {
    bucket          = aws_s3_bucket.cdn_logs[0].bucket_domain_name
    include_cookies = false
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    cloudfront_default_certificate = true
  }

  depends_on = [aws_s3_bucket_ownership_controls.cdn_logs]
}

locals {
  # the web ACL's AWS managed rule groups, in priority order (the CDK app's infra/stacks/waf.py)
  managed_rule_groups = ["AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet",
  "AWSManagedRulesAmazonIpReputationList"]
}
