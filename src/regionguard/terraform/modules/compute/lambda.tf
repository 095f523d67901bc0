# compute = "lambda": the app on Lambda (Mangum) behind an API Gateway HTTP API, reached by
# `<aws region>.<domain>` and by `<domain>` (API Gateway routes by Host, so the failover or
# latency record's name must be a custom domain of the API too).

resource "aws_iam_role" "app_fn" {
  count       = local.serverless ? 1 : 0
  name_prefix = "${var.app_name}-app-${var.label}-"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

# AWS managed: the function's log streams and its VPC network interfaces
resource "aws_iam_role_policy_attachment" "app_fn_vpc" {
  count      = local.serverless ? 1 : 0
  role       = aws_iam_role.app_fn[0].name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

resource "aws_iam_role_policy" "app_fn" {
  count = local.serverless ? 1 : 0
  name  = "app"
  role  = aws_iam_role.app_fn[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(local.app_statements, [{
      Sid      = "ActiveTracing" # X-Ray's calls support no resource scoping
      Effect   = "Allow"
      Action   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      Resource = ["*"]
    }])
  })
}

resource "aws_security_group" "app_fn" {
  count       = local.serverless ? 1 : 0
  name_prefix = "${var.app_name}-app-fn-${var.label}-"
  description = "app Lambda"
  vpc_id      = var.vpc_id
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_egress_rule" "app_fn_https" {
  count             = local.serverless ? 1 : 0
  security_group_id = aws_security_group.app_fn[0].id
  description       = "AWS APIs and the other region's entry point, over HTTPS"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "app_fn_db" {
  count             = local.serverless ? 1 : 0
  security_group_id = aws_security_group.app_fn[0].id
  description       = "the database (or its proxy), inside the VPC"
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "tcp"
  from_port         = var.db_port
  to_port           = var.db_port
}

resource "aws_cloudwatch_log_group" "app_fn" {
  #checkov:skip=CKV_AWS_338:application logs are operational, kept one month as in the CDK app; raise log_retention_days for audit
  count             = local.serverless ? 1 : 0
  name              = "/aws/lambda/${var.app_function_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.logs.arn
}

resource "aws_lambda_function" "app" {
  #checkov:skip=CKV_AWS_116:invoked synchronously by API Gateway: the caller sees the error and retries; there is no event to keep
  #checkov:skip=CKV_AWS_115:the app scales with its traffic; a reserved limit would cap it (provisioned_concurrency keeps it warm instead)
  #checkov:skip=CKV_AWS_173:the environment holds names and endpoints only; the credentials are read from Secrets Manager at start
  #checkov:skip=CKV_AWS_272:the bundle is built by this repository (make lambda-bundle) and pinned by its hash; code signing would need a Signer profile the CDK app does not use either
  count            = local.serverless ? 1 : 0
  function_name    = var.app_function_name
  role             = aws_iam_role.app_fn[0].arn
  runtime          = var.lambda_runtime
  handler          = "regionguard.app.lambda_handler.handler"
  filename         = var.lambda_bundle_zip
  source_code_hash = filebase64sha256(var.lambda_bundle_zip)
  memory_size      = 512
  timeout          = 15
  publish          = local.provisioned

  environment {
    variables = local.app_env
  }

  vpc_config {
    subnet_ids         = var.private_subnet_ids
    security_group_ids = [aws_security_group.app_fn[0].id]
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.app_fn[0].name
  }

  depends_on = [aws_iam_role_policy_attachment.app_fn_vpc]
}

resource "aws_lambda_alias" "live" {
  count            = local.provisioned ? 1 : 0
  name             = "live"
  function_name    = aws_lambda_function.app[0].function_name
  function_version = aws_lambda_function.app[0].version
}

resource "aws_lambda_provisioned_concurrency_config" "live" {
  count                             = local.provisioned ? 1 : 0
  function_name                     = aws_lambda_function.app[0].function_name
  qualifier                         = aws_lambda_alias.live[0].name
  provisioned_concurrent_executions = var.provisioned_concurrency
  lifecycle {
    # the engine sets it on failover (lambda:PutProvisionedConcurrencyConfig)
    ignore_changes = [provisioned_concurrent_executions]
  }
}

locals {
  app_target_arn    = local.provisioned ? aws_lambda_alias.live[0].arn : try(aws_lambda_function.app[0].arn, "")
  app_target_invoke = local.provisioned ? aws_lambda_alias.live[0].invoke_arn : try(aws_lambda_function.app[0].invoke_arn, "")
}

resource "aws_apigatewayv2_api" "app" {
  count                        = local.serverless ? 1 : 0
  name                         = "${var.app_name}-${var.label}"
  protocol_type                = "HTTP"
  disable_execute_api_endpoint = true

  dynamic "cors_configuration" {
    for_each = length(var.cors_origins) > 0 ? [1] : []
    content {
      allow_origins  = var.cors_origins
      allow_methods  = ["GET", "POST", "DELETE", "OPTIONS"]
      allow_headers  = ["content-type", "authorization"]
      expose_headers = ["retry-after", "x-regionguard-written-in"]
      max_age        = 3600
    }
  }
}

resource "aws_apigatewayv2_integration" "app" {
  count                  = local.serverless ? 1 : 0
  api_id                 = aws_apigatewayv2_api.app[0].id
  integration_type       = "AWS_PROXY"
  integration_uri        = local.app_target_invoke
  payload_format_version = "2.0"
}

resource "aws_apigatewayv2_route" "app" {
  #checkov:skip=CKV_AWS_309:the workload API (orders) is public by design; only /health-check carries an authorizer (as in the CDK app)
  count     = local.serverless ? 1 : 0
  api_id    = aws_apigatewayv2_api.app[0].id
  route_key = "$default"
  target    = "integrations/${aws_apigatewayv2_integration.app[0].id}"
}

resource "aws_cloudwatch_log_group" "app_api" {
  #checkov:skip=CKV_AWS_338:access logs are operational, kept one month as in the CDK app; raise log_retention_days for audit
  count             = local.serverless ? 1 : 0
  name_prefix       = "/regionguard/${var.app_name}-${var.label}/api-"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.logs.arn
}

resource "aws_apigatewayv2_stage" "app" {
  count       = local.serverless ? 1 : 0
  api_id      = aws_apigatewayv2_api.app[0].id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_rate_limit  = var.api_rate_limit
    throttling_burst_limit = var.api_burst_limit
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.app_api[0].arn
    format          = local.access_log_format
  }
}

resource "aws_lambda_permission" "app_api" {
  count         = local.serverless ? 1 : 0
  statement_id  = "FromHttpApi"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.app[0].function_name
  qualifier     = local.provisioned ? aws_lambda_alias.live[0].name : null
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.app[0].execution_arn}/*/*"
}

resource "aws_apigatewayv2_domain_name" "region" {
  count       = local.serverless ? 1 : 0
  domain_name = var.region_host
  domain_name_configuration {
    certificate_arn = aws_acm_certificate_validation.this.certificate_arn
    endpoint_type   = "REGIONAL"
    security_policy = "TLS_1_2"
  }
}

resource "aws_apigatewayv2_api_mapping" "region" {
  count       = local.serverless ? 1 : 0
  api_id      = aws_apigatewayv2_api.app[0].id
  domain_name = aws_apigatewayv2_domain_name.region[0].id
  stage       = aws_apigatewayv2_stage.app[0].id
}

resource "aws_apigatewayv2_domain_name" "shared" {
  count       = local.serverless ? 1 : 0
  domain_name = var.domain
  domain_name_configuration {
    certificate_arn = aws_acm_certificate_validation.this.certificate_arn
    endpoint_type   = "REGIONAL"
    security_policy = "TLS_1_2"
  }
}

resource "aws_apigatewayv2_api_mapping" "shared" {
  count       = local.serverless ? 1 : 0
  api_id      = aws_apigatewayv2_api.app[0].id
  domain_name = aws_apigatewayv2_domain_name.shared[0].id
  stage       = aws_apigatewayv2_stage.app[0].id
}
