output "table_arn" {
  description = "The arbiter table (its replica in the primary region)."
  value       = aws_cloudformation_stack.arbiter.outputs["TableArn"]
}

output "admin_key_alias" {
  description = "The alias of the key of the secrets' primary copies."
  value       = aws_kms_alias.admin.name
}

output "origin_secret_value" {
  description = "The origin header's value (CloudFront adds it to API requests)."
  value       = length(aws_secretsmanager_secret_version.origin) > 0 ? aws_secretsmanager_secret_version.origin[0].secret_string : null
  sensitive   = true
}
