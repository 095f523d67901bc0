# Serverless: the static-content bucket of each region (the primary's replicates every object to
# the standby's: S3 cross-region replication) and, in us-east-1, CloudFront in front of both
# buckets (through Origin Access Control) and of the API: /orders* and /health* go uncached,
# with every viewer header but Host, to <domain>, which Route 53 answers with the Region the
# failover or latency record picks. AWS WAF guards the distribution (an API Gateway HTTP API
# cannot take a web ACL itself). The same as the CDK app's StaticSiteStack and EdgeStack.

locals {
  primary = var.role == "primary"
  edge    = var.edge == null ? [] : [var.edge]
}

# -- the access-log bucket -------------------------------------------------------------------

resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV_AWS_18:this is the access-log bucket itself; logging it into itself would loop
  #checkov:skip=CKV_AWS_21:log objects are written once and expire after 90 days; versions would only keep deleted logs
  #checkov:skip=CKV_AWS_144:access logs stay in the region they describe; replicating them adds nothing to recovery
  #checkov:skip=CKV_AWS_145:S3 server access logs can only be delivered to SSE-S3 encrypted buckets
  #checkov:skip=CKV2_AWS_62:nothing consumes events of the log bucket
  bucket_prefix = "${var.app_name}-static-logs-${var.label}-"
}

resource "aws_s3_bucket_public_access_block" "logs" {
  bucket                  = aws_s3_bucket.logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id
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

resource "aws_s3_bucket_policy" "logs" {
  bucket = aws_s3_bucket.logs.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "S3ServerAccessLogs"
        Effect    = "Allow"
        Principal = { Service = "logging.s3.amazonaws.com" }
        Action    = "s3:PutObject"
        Resource  = "${aws_s3_bucket.logs.arn}/static/*"
        Condition = {
          ArnLike      = { "aws:SourceArn" = "arn:aws:s3:::${var.bucket_name}" }
          StringEquals = { "aws:SourceAccount" = var.account_id }
        }
      },
      {
        Sid       = "TlsOnly"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [aws_s3_bucket.logs.arn, "${aws_s3_bucket.logs.arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
    ]
  })
  depends_on = [aws_s3_bucket_public_access_block.logs]
}

# -- the static-content bucket ---------------------------------------------------------------

resource "aws_s3_bucket" "static" {
  #checkov:skip=CKV_AWS_144:the primary's bucket replicates to the standby's (aws_s3_bucket_replication_configuration); the standby's is the replication target
  #checkov:skip=CKV_AWS_145:CloudFront reads it through Origin Access Control; SSE-S3 as in the CDK app (SSE-KMS would make every viewer request a KMS call)
  #checkov:skip=CKV2_AWS_62:nothing consumes events of the static-content bucket
  bucket = var.bucket_name
}

resource "aws_s3_bucket_public_access_block" "static" {
  bucket                  = aws_s3_bucket.static.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "static" {
  bucket = aws_s3_bucket.static.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "static" {
  bucket = aws_s3_bucket.static.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "static" {
  bucket = aws_s3_bucket.static.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "static" {
  bucket = aws_s3_bucket.static.id
  rule {
    id     = "old-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
  depends_on = [aws_s3_bucket_versioning.static]
}

resource "aws_s3_bucket_logging" "static" {
  bucket        = aws_s3_bucket.static.id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "static/"
}

resource "aws_s3_bucket_policy" "static" {
  bucket = aws_s3_bucket.static.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "CloudFrontReads"
        Effect    = "Allow"
        Principal = { Service = "cloudfront.amazonaws.com" }
        Action    = "s3:GetObject"
        Resource  = "${aws_s3_bucket.static.arn}/*"
        Condition = { StringLike = { "AWS:SourceArn" = "arn:aws:cloudfront::${var.account_id}:distribution/*" } }
      },
      {
        Sid       = "TlsOnly"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [aws_s3_bucket.static.arn, "${aws_s3_bucket.static.arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
    ]
  })
  depends_on = [aws_s3_bucket_public_access_block.static]
}

# -- cross-region replication (primary) ------------------------------------------------------

resource "aws_iam_role" "replication" {
  count       = local.primary ? 1 : 0
  name_prefix = "${var.app_name}-static-crr-"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "s3.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy" "replication" {
  count = local.primary ? 1 : 0
  name  = "replicate-static"
  role  = aws_iam_role.replication[0].id
  # object-level replication actions apply to every object (/*) of exactly the two buckets
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect   = "Allow"
        Action   = ["s3:GetReplicationConfiguration", "s3:ListBucket"]
        Resource = [aws_s3_bucket.static.arn]
      },
      {
        Effect   = "Allow"
        Action   = ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging"]
        Resource = ["${aws_s3_bucket.static.arn}/*"]
      },
      {
        Effect   = "Allow"
        Action   = ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"]
        Resource = ["${var.replicate_to_bucket_arn}/*"]
      },
    ]
  })
}

resource "aws_s3_bucket_replication_configuration" "static" {
  count  = local.primary ? 1 : 0
  bucket = aws_s3_bucket.static.id
  role   = aws_iam_role.replication[0].arn

  rule {
    id       = "to-standby"
    status   = "Enabled"
    priority = 1
    filter {}
    delete_marker_replication {
      status = "Enabled"
    }
    destination {
      bucket = var.replicate_to_bucket_arn
    }
  }

  depends_on = [aws_s3_bucket_versioning.static]
}
