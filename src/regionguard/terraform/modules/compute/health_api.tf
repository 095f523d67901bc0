# GET /health-check (seed 004) behind a Cognito JWT authorizer, served by the function that a
# schedule also runs every minute to write this region's /health/deep result into the arbiter
# table. Reached by `health.<domain>` (the routing module's latency record). Each region has its
# own user pool: a pool is regional, and the standby's pool is the pool's own DR.

locals {
  access_log_format = jsonencode({
    requestId = "$context.requestId"
    ip        = "$context.identity.sourceIp"
    route     = "$context.routeKey"
    status    = "$context.status"
    latency   = "$context.responseLatency"
  })
}

resource "aws_cognito_user_pool" "health" {
  name                     = "${var.app_name}-health-${var.label}"
  mfa_configuration        = "ON"
  user_pool_tier           = "PLUS"
  deletion_protection      = "ACTIVE"
  auto_verified_attributes = ["email"]

  software_token_mfa_configuration {
    enabled = true
  }

  password_policy {
    minimum_length    = 14
    require_numbers   = true
    require_lowercase = true
    require_symbols   = true
    require_uppercase = true
  }

  admin_create_user_config {
    allow_admin_create_user_only = true # no self sign-up
  }

  account_recovery_setting {
    recovery_mechanism {
      name     = "verified_email"
      priority = 1
    }
  }

  user_pool_add_ons {
    advanced_security_mode = "ENFORCED"
  }
}

resource "aws_cognito_user_pool_client" "health" {
  name                = "health-check"
  user_pool_id        = aws_cognito_user_pool.health.id
  generate_secret     = false
  explicit_auth_flows = ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
}

resource "aws_iam_role" "health_fn" {
  name_prefix = "${var.app_name}-health-${var.label}-"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

# AWS managed: the function's own log streams
resource "aws_iam_role_policy_attachment" "health_fn_logs" {
  role       = aws_iam_role.health_fn.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
}

resource "aws_iam_role_policy" "health_fn" {
  name = "health-row"
  role = aws_iam_role.health_fn.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["dynamodb:PutItem", "dynamodb:GetItem"]
      Resource = ["arn:aws:dynamodb:${var.aws_region}:${var.account_id}:table/${var.state_table}"]
    }]
  })
}

resource "aws_cloudwatch_log_group" "health_fn" {
  #checkov:skip=CKV_AWS_338:the health writer's logs are operational, kept one month as in the CDK app; raise log_retention_days for audit
  name              = "/aws/lambda/${var.health_function_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.logs.arn
}

resource "aws_lambda_function" "health" {
  #checkov:skip=CKV_AWS_116:run by a schedule every minute and by API Gateway synchronously: the next run is the retry
  #checkov:skip=CKV_AWS_115:one run a minute plus the /health-check calls; a reserved limit would only refuse calls
  #checkov:skip=CKV_AWS_117:it calls this region's public entry point and DynamoDB only; a VPC would add a NAT gateway to its path (as in the CDK app)
  #checkov:skip=CKV_AWS_173:the environment holds names and a URL only, no secret
  #checkov:skip=CKV_AWS_272:the bundle is built by this repository (make lambda-bundle) and pinned by its hash
  #checkov:skip=CKV_AWS_50:one DynamoDB write a minute; its logs say everything a trace would (the CDK app does not trace it either)
  function_name    = var.health_function_name
  role             = aws_iam_role.health_fn.arn
  runtime          = var.lambda_runtime
  handler          = "regionguard.providers.aws.health.handler"
  filename         = var.lambda_bundle_zip
  source_code_hash = filebase64sha256(var.lambda_bundle_zip)
  memory_size      = 256
  timeout          = 10

  environment {
    variables = {
      RG_REGION      = var.label
      RG_STATE_TABLE = var.state_table
      RG_REGIONS     = join(",", var.region_names)
      RG_HEALTH_URL  = "https://${var.region_host}/health/deep"
    }
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.health_fn.name
  }

  depends_on = [aws_iam_role_policy_attachment.health_fn_logs]
}

resource "aws_cloudwatch_event_rule" "health" {
  name_prefix         = "${var.app_name}-health-${var.label}-"
  description         = "regionguard: write ${var.label}'s health into the arbiter table"
  schedule_expression = "rate(1 minute)"
}

resource "aws_cloudwatch_event_target" "health" {
  rule = aws_cloudwatch_event_rule.health.name
  arn  = aws_lambda_function.health.arn
}

resource "aws_lambda_permission" "health_schedule" {
  statement_id  = "FromSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.health.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.health.arn
}

resource "aws_apigatewayv2_api" "health" {
  name                         = "${var.app_name}-health-${var.label}"
  protocol_type                = "HTTP"
  disable_execute_api_endpoint = true # only by its custom domain
}

resource "aws_apigatewayv2_authorizer" "cognito" {
  api_id           = aws_apigatewayv2_api.health.id
  name             = "Cognito"
  authorizer_type  = "JWT"
  identity_sources = ["$request.header.Authorization"]
  jwt_configuration {
    issuer   = "https://cognito-idp.${var.aws_region}.amazonaws.com/${aws_cognito_user_pool.health.id}"
    audience = [aws_cognito_user_pool_client.health.id]
  }
}

resource "aws_apigatewayv2_integration" "health" {
  api_id                 = aws_apigatewayv2_api.health.id
  integration_type       = "AWS_PROXY"
  integration_uri        = aws_lambda_function.health.invoke_arn
  payload_format_version = "2.0"
}

resource "aws_apigatewayv2_route" "health" {
  api_id             = aws_apigatewayv2_api.health.id
  route_key          = "GET /health-check"
  target             = "integrations/${aws_apigatewayv2_integration.health.id}"
  authorization_type = "JWT"
  authorizer_id      = aws_apigatewayv2_authorizer.cognito.id
}

resource "aws_cloudwatch_log_group" "health_api" {
  #checkov:skip=CKV_AWS_338:access logs are operational, kept one month as in the CDK app; raise log_retention_days for audit
  name_prefix       = "/regionguard/${var.app_name}-${var.label}/health-api-"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.logs.arn
}

resource "aws_apigatewayv2_stage" "health" {
  api_id      = aws_apigatewayv2_api.health.id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_rate_limit  = var.api_rate_limit
    throttling_burst_limit = var.api_burst_limit
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.health_api.arn
    format          = local.access_log_format
  }
}

resource "aws_lambda_permission" "health_api" {
  statement_id  = "FromHealthApi"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.health.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.health.execution_arn}/*/*/health-check"
}

resource "aws_apigatewayv2_domain_name" "health" {
  domain_name = var.health_host
  domain_name_configuration {
    certificate_arn = aws_acm_certificate_validation.this.certificate_arn
    endpoint_type   = "REGIONAL"
    security_policy = "TLS_1_2"
  }
}

resource "aws_apigatewayv2_api_mapping" "health" {
  api_id      = aws_apigatewayv2_api.health.id
  domain_name = aws_apigatewayv2_domain_name.health.id
  stage       = aws_apigatewayv2_stage.health.id
}
