output "entry_alias" {
  description = "What <aws region>.<domain> aliases: the ALB, or the API's regional custom domain."
  value = local.ec2 ? {
    dns_name = aws_lb.this[0].dns_name
    zone_id  = aws_lb.this[0].zone_id
    } : {
    dns_name = aws_apigatewayv2_domain_name.region[0].domain_name_configuration[0].target_domain_name
    zone_id  = aws_apigatewayv2_domain_name.region[0].domain_name_configuration[0].hosted_zone_id
  }
}

output "shared_alias" {
  description = "What this region's half of the <domain> record aliases: the ALB, or the API's custom domain for <domain> (API Gateway routes by Host)."
  value = local.ec2 ? {
    dns_name = aws_lb.this[0].dns_name
    zone_id  = aws_lb.this[0].zone_id
    } : {
    dns_name = aws_apigatewayv2_domain_name.shared[0].domain_name_configuration[0].target_domain_name
    zone_id  = aws_apigatewayv2_domain_name.shared[0].domain_name_configuration[0].hosted_zone_id
  }
}

output "health_alias" {
  description = "What this region's half of health.<domain> aliases: the health API's custom domain."
  value = {
    dns_name = aws_apigatewayv2_domain_name.health.domain_name_configuration[0].target_domain_name
    zone_id  = aws_apigatewayv2_domain_name.health.domain_name_configuration[0].hosted_zone_id
  }
}

output "ops_topic_arn" {
  description = "The region's operations topic (Auto Scaling notifications, alarms)."
  value       = aws_sns_topic.ops.arn
}

output "alb_arn_suffix" {
  description = "The ALB's metric dimension (LoadBalancer), or null for Lambda."
  value       = local.ec2 ? aws_lb.this[0].arn_suffix : null
}

output "user_pool_id" {
  description = "The /health-check API's Cognito user pool."
  value       = aws_cognito_user_pool.health.id
}
