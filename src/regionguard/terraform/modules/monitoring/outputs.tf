output "health_check_id" {
  description = "The trigger's check of the primary's /health/deep (us-east-1), or null."
  value       = length(aws_route53_health_check.primary_deep) > 0 ? aws_route53_health_check.primary_deep[0].id : null
}

output "alarm_topic_arn" {
  description = "The trigger's alarm topic (us-east-1), or null."
  value       = length(aws_sns_topic.alarms) > 0 ? aws_sns_topic.alarms[0].arn : null
}
