output "table_arn" {
  description = "The sessions table (its replica in the primary region)."
  value       = aws_dynamodb_table.sessions.arn
}

output "key_alias" {
  description = "The alias of each region's key of its replica (the same name in both regions): the apps' roles name their own region's key by it."
  value       = aws_kms_alias.primary.name
}
