# compute = "ec2": ALB (HTTPS, AWS WAF, access logs) -> Auto Scaling group of the app.

data "aws_elb_service_account" "this" {
  count = local.ec2 ? 1 : 0 # the Region's ELB log-delivery account: a table in the provider, no API call
}

# -- the ALB's access logs -------------------------------------------------------------------

resource "aws_s3_bucket" "alb_logs" {
  #checkov:skip=CKV_AWS_18:this is the access-log bucket itself; logging it into itself would loop
  #checkov:skip=CKV_AWS_144:access logs of one region's ALB stay in that region; replicating them adds nothing to recovery
  #checkov:skip=CKV_AWS_145:ALB access logs can only be delivered to SSE-S3 encrypted buckets (ELB does not support SSE-KMS)
  #checkov:skip=CKV_AWS_21:log objects are written once and expire after 90 days; versions would only keep deleted logs
  #checkov:skip=CKV2_AWS_62:nothing consumes events of the log bucket
  count         = local.ec2 ? 1 : 0
  bucket_prefix = "${var.app_name}-alb-logs-${var.label}-"
}

resource "aws_s3_bucket_public_access_block" "alb_logs" {
  count                   = local.ec2 ? 1 : 0
  bucket                  = aws_s3_bucket.alb_logs[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "alb_logs" {
  count  = local.ec2 ? 1 : 0
  bucket = aws_s3_bucket.alb_logs[0].id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "alb_logs" {
  count  = local.ec2 ? 1 : 0
  bucket = aws_s3_bucket.alb_logs[0].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "alb_logs" {
  count  = local.ec2 ? 1 : 0
  bucket = aws_s3_bucket.alb_logs[0].id
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

resource "aws_s3_bucket_policy" "alb_logs" {
  count  = local.ec2 ? 1 : 0
  bucket = aws_s3_bucket.alb_logs[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "ElbDelivers"
        Effect    = "Allow"
        Principal = { AWS = data.aws_elb_service_account.this[0].arn }
        Action    = "s3:PutObject"
        Resource  = "${aws_s3_bucket.alb_logs[0].arn}/alb/AWSLogs/${var.account_id}/*"
      },
      {
        Sid       = "S3ServerAccessLogs" # the artifact bucket's access log
        Effect    = "Allow"
        Principal = { Service = "logging.s3.amazonaws.com" }
        Action    = "s3:PutObject"
        Resource  = "${aws_s3_bucket.alb_logs[0].arn}/artifacts/*"
        Condition = {
          ArnLike      = { "aws:SourceArn" = aws_s3_bucket.artifacts[0].arn }
          StringEquals = { "aws:SourceAccount" = var.account_id }
        }
      },
      {
        Sid       = "TlsOnly"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [aws_s3_bucket.alb_logs[0].arn, "${aws_s3_bucket.alb_logs[0].arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
    ]
  })
  depends_on = [aws_s3_bucket_public_access_block.alb_logs]
}

# -- the ALB ---------------------------------------------------------------------------------

resource "aws_security_group" "alb" {
  count       = local.ec2 ? 1 : 0
  name_prefix = "${var.app_name}-alb-${var.label}-"
  description = "HTTPS from anywhere"
  vpc_id      = var.vpc_id
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  count             = local.ec2 ? 1 : 0
  security_group_id = aws_security_group.alb[0].id
  description       = "HTTPS"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_ingress_rule" "alb_http" {
  #checkov:skip=CKV_AWS_260:port 80 only answers with a redirect to HTTPS (listener "http"); a public web entry point accepts it by design
  count             = local.ec2 ? 1 : 0
  security_group_id = aws_security_group.alb[0].id
  description       = "HTTP -> HTTPS redirect"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
}

resource "aws_vpc_security_group_egress_rule" "alb_to_app" {
  count                        = local.ec2 ? 1 : 0
  security_group_id            = aws_security_group.alb[0].id
  description                  = "to the app's port"
  referenced_security_group_id = aws_security_group.app[0].id
  ip_protocol                  = "tcp"
  from_port                    = local.app_port
  to_port                      = local.app_port
}

resource "aws_lb" "this" {
  #checkov:skip=CKV2_AWS_76:Log4j's exploits are matched by AWSManagedRulesKnownBadInputsRuleSet, which the web ACL has; the check also demands AWSManagedRulesAnonymousIpList, which would block VPN and hosting-provider clients (the CDK app's web ACL does not block them either)
  count                      = local.ec2 ? 1 : 0
  name_prefix                = "rg-"
  load_balancer_type         = "application"
  internal                   = false
  security_groups            = [aws_security_group.alb[0].id]
  subnets                    = var.public_subnet_ids
  drop_invalid_header_fields = true
  enable_deletion_protection = true

  access_logs {
    bucket  = aws_s3_bucket.alb_logs[0].id
    prefix  = "alb"
    enabled = true
  }

  depends_on = [aws_s3_bucket_policy.alb_logs]
}

resource "aws_lb_target_group" "app" {
  #checkov:skip=CKV_AWS_378:TLS ends at the ALB; the app listens on plain HTTP inside the VPC, reachable only from the ALB's security group (as in the CDK app)
  count                = local.ec2 ? 1 : 0
  name_prefix          = "rg-"
  port                 = local.app_port
  protocol             = "HTTP"
  vpc_id               = var.vpc_id
  target_type          = "instance"
  deregistration_delay = 10

  health_check {
    path                = "/health/deep"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_lb_listener" "https" {
  count             = local.ec2 ? 1 : 0
  load_balancer_arn = aws_lb.this[0].arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = aws_acm_certificate_validation.this.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.app[0].arn
  }
}

resource "aws_lb_listener" "http" {
  count             = local.ec2 ? 1 : 0
  load_balancer_arn = aws_lb.this[0].arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"
    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }
}

# -- AWS WAF (regional) on the ALB -----------------------------------------------------------

resource "aws_wafv2_web_acl" "alb" {
  #checkov:skip=CKV2_AWS_31:request logging is not set up by the CDK app either; the rules' CloudWatch metrics and sampled requests are on
  count = local.ec2 ? 1 : 0
  name  = "${var.app_name}-alb-${var.label}"
  scope = "REGIONAL"

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
        limit              = var.waf_rate_limit
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
    metric_name                = "${var.app_name}-alb-${var.label}"
    sampled_requests_enabled   = true
  }
}

resource "aws_wafv2_web_acl_association" "alb" {
  count        = local.ec2 ? 1 : 0
  resource_arn = aws_lb.this[0].arn
  web_acl_arn  = aws_wafv2_web_acl.alb[0].arn
}

# -- the app's instances ---------------------------------------------------------------------

resource "aws_security_group" "app" {
  count       = local.ec2 ? 1 : 0
  name_prefix = "${var.app_name}-app-${var.label}-"
  description = "app from the ALB"
  vpc_id      = var.vpc_id
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "app_from_alb" {
  count                        = local.ec2 ? 1 : 0
  security_group_id            = aws_security_group.app[0].id
  description                  = "app port from the ALB"
  referenced_security_group_id = aws_security_group.alb[0].id
  ip_protocol                  = "tcp"
  from_port                    = local.app_port
  to_port                      = local.app_port
}

resource "aws_vpc_security_group_egress_rule" "app_https" {
  count             = local.ec2 ? 1 : 0
  security_group_id = aws_security_group.app[0].id
  description       = "AWS APIs (Secrets Manager, DynamoDB, S3) and the other region's entry point, over HTTPS"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "app_db" {
  count             = local.ec2 ? 1 : 0
  security_group_id = aws_security_group.app[0].id
  description       = "the database, inside the VPC"
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "tcp"
  from_port         = var.db_port
  to_port           = var.db_port
}

resource "aws_iam_role" "instance" {
  count       = local.ec2 ? 1 : 0
  name_prefix = "${var.app_name}-app-${var.label}-"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

# Session Manager instead of SSH keys, maintained by AWS
resource "aws_iam_role_policy_attachment" "instance_ssm" {
  count      = local.ec2 ? 1 : 0
  role       = aws_iam_role.instance[0].name
  policy_arn = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_role_policy" "instance" {
  count = local.ec2 ? 1 : 0
  name  = "app"
  role  = aws_iam_role.instance[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(local.app_statements, [{
      Sid      = "FetchWheelhouse" # that one object, no wildcard
      Effect   = "Allow"
      Action   = ["s3:GetObject"]
      Resource = ["${aws_s3_bucket.artifacts[0].arn}/${aws_s3_object.wheelhouse[0].key}"]
    }])
  })
}

resource "aws_iam_instance_profile" "app" {
  count       = local.ec2 ? 1 : 0
  name_prefix = "${var.app_name}-app-${var.label}-"
  role        = aws_iam_role.instance[0].name
}

# the wheelhouse (the CDK app's asset bucket does this job there): the instances install the
# app from it with --no-index --require-hashes; nothing comes from a package index at boot
resource "aws_s3_bucket" "artifacts" {
  #checkov:skip=CKV_AWS_144:the wheelhouse is uploaded by this configuration in every region; replicating it adds nothing
  #checkov:skip=CKV2_AWS_62:nothing consumes events of the artifact bucket
  #checkov:skip=CKV2_AWS_61:one object, replaced in place on each apply; nothing to expire
  count         = local.ec2 ? 1 : 0
  bucket_prefix = "${var.app_name}-artifacts-${var.label}-"
}

resource "aws_s3_bucket_public_access_block" "artifacts" {
  count                   = local.ec2 ? 1 : 0
  bucket                  = aws_s3_bucket.artifacts[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "artifacts" {
  count  = local.ec2 ? 1 : 0
  bucket = aws_s3_bucket.artifacts[0].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "artifacts" {
  count  = local.ec2 ? 1 : 0
  bucket = aws_s3_bucket.artifacts[0].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.logs.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_logging" "artifacts" {
  count         = local.ec2 ? 1 : 0
  bucket        = aws_s3_bucket.artifacts[0].id
  target_bucket = aws_s3_bucket.alb_logs[0].id
  target_prefix = "artifacts/"
}

resource "aws_s3_bucket_policy" "artifacts" {
  count  = local.ec2 ? 1 : 0
  bucket = aws_s3_bucket.artifacts[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "TlsOnly"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [aws_s3_bucket.artifacts[0].arn, "${aws_s3_bucket.artifacts[0].arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })
  depends_on = [aws_s3_bucket_public_access_block.artifacts]
}

resource "aws_s3_object" "wheelhouse" {
  count       = local.ec2 ? 1 : 0
  bucket      = aws_s3_bucket.artifacts[0].id
  key         = "wheelhouse/${filesha256(var.app_wheelhouse_zip)}.zip"
  source      = var.app_wheelhouse_zip
  source_hash = filesha256(var.app_wheelhouse_zip)
  kms_key_id  = aws_kms_key.logs.arn
}

locals {
  # the app's environment, one KEY=value per line (systemd EnvironmentFile)
  env_file = join("\n", [for k, v in local.app_env : "${k}=${v}"])
  user_data = local.ec2 ? join("\n", [
    "#!/bin/bash",
    "set -euo pipefail",
    "dnf install -y python3.11 python3.11-pip unzip awscli",
    "mkdir -p /opt/regionguard",
    "aws s3 cp --region ${var.aws_region} s3://${aws_s3_bucket.artifacts[0].id}/${aws_s3_object.wheelhouse[0].key} /opt/regionguard/wheels.zip",
    "unzip -o -q /opt/regionguard/wheels.zip -d /opt/regionguard/wheels",
    "python3.11 -m venv /opt/regionguard/venv",
    "/opt/regionguard/venv/bin/pip install --no-index --find-links /opt/regionguard/wheels --require-hashes -r /opt/regionguard/wheels/requirements.txt",
    "cat > /etc/regionguard.env <<'ENV'",
    local.env_file,
    "ENV",
    "useradd --system regionguard || true",
    "cat > /etc/systemd/system/regionguard-app.service <<'UNIT'",
    "[Unit]",
    "After=network-online.target",
    "Wants=network-online.target",
    "StartLimitIntervalSec=0",
    "[Service]",
    "EnvironmentFile=/etc/regionguard.env",
    "User=regionguard",
    "RestartSec=5",
    "ExecStart=/opt/regionguard/venv/bin/python -m uvicorn regionguard.app.main:create_app --factory --host 0.0.0.0 --port ${local.app_port}",
    "Restart=always",
    "[Install]",
    "WantedBy=multi-user.target",
    "UNIT",
    "systemctl daemon-reload && systemctl enable --now regionguard-app",
  ]) : ""
}

resource "aws_launch_template" "app" {
  count                  = local.ec2 ? 1 : 0
  name_prefix            = "${var.app_name}-app-${var.label}-"
  image_id               = "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
  instance_type          = var.instance_type
  vpc_security_group_ids = [aws_security_group.app[0].id]
  user_data              = base64encode(local.user_data)
  update_default_version = true

  iam_instance_profile {
    arn = aws_iam_instance_profile.app[0].arn
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required" # IMDSv2 only
    http_put_response_hop_limit = 1
  }

  monitoring {
    enabled = true
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size = 20
      volume_type = "gp3"
      encrypted   = true
    }
  }
}

resource "aws_autoscaling_group" "app" {
  count                     = local.ec2 ? 1 : 0
  name                      = var.asg_name # the engine scales it by this name
  min_size                  = var.desired_capacity
  max_size                  = max(var.desired_capacity, var.desired_capacity > 0 ? var.capacity : 0)
  desired_capacity          = var.desired_capacity
  vpc_zone_identifier       = var.private_subnet_ids
  target_group_arns         = [aws_lb_target_group.app[0].arn]
  health_check_type         = "ELB"
  health_check_grace_period = 60

  launch_template {
    id      = aws_launch_template.app[0].id
    version = aws_launch_template.app[0].latest_version
  }

  tag {
    key                 = "regionguard:region"
    value               = var.label
    propagate_at_launch = true
  }

  lifecycle {
    # the engine owns the capacity once deployed (scale on failover, retire the old primary)
    ignore_changes = [min_size, max_size, desired_capacity]
  }
}

resource "aws_autoscaling_notification" "app" {
  count       = local.ec2 ? 1 : 0
  group_names = [aws_autoscaling_group.app[0].name]
  topic_arn   = aws_sns_topic.ops.arn
  notifications = [
    "autoscaling:EC2_INSTANCE_LAUNCH",
    "autoscaling:EC2_INSTANCE_TERMINATE",
    "autoscaling:EC2_INSTANCE_LAUNCH_ERROR",
    "autoscaling:EC2_INSTANCE_TERMINATE_ERROR",
  ]
}

locals {
  # the web ACL's AWS managed rule groups, in priority order (the CDK app's infra/stacks/waf.py)
  managed_rule_groups = ["AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet",
  "AWSManagedRulesAmazonIpReputationList"]
}
