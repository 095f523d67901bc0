output "endpoint_host" {
  description = "Where this region's app connects: the instance, replica, proxy or cluster endpoint; empty for backup & restore's standby (the app finds the restored instance by identifier)."
  value = (
    length(aws_db_proxy.this) > 0 ? aws_db_proxy.this[0].endpoint :
    length(aws_db_instance.primary) > 0 ? aws_db_instance.primary[0].address :
    length(aws_db_instance.replica) > 0 ? aws_db_instance.replica[0].address :
    length(aws_rds_cluster.primary) > 0 ? aws_rds_cluster.primary[0].endpoint :
    length(aws_rds_cluster.secondary) > 0 ? aws_rds_cluster.secondary[0].endpoint : ""
  )
}

output "port" {
  description = "The engine's port (a proxy listens on the engine's default port too)."
  value       = local.spec.port
}

output "instance_arn" {
  description = "The primary RDS instance's ARN (the replica's source), or null."
  value       = length(aws_db_instance.primary) > 0 ? aws_db_instance.primary[0].arn : null
}

output "global_cluster_id" {
  description = "The Aurora global cluster, or null."
  value       = length(aws_rds_global_cluster.this) > 0 ? aws_rds_global_cluster.this[0].id : null
}

output "key_arn" {
  description = "This region's database CMK (it also encrypts the primary's copy of the secret)."
  value       = aws_kms_key.db.arn
}

output "owns_secret" {
  description = "Whether the secret's primary copy (encrypted with key_arn) lives in this region."
  value       = local.owns_secret
}

output "security_group_id" {
  description = "The database's security group."
  value       = aws_security_group.db.id
}
