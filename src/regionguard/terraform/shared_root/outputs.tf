output "region_hosts" {
  description = "Each region's own name (<aws region>.<domain>): the guards probe it, Route 53 checks it."
  value       = var.names.region_host
}

output "database_endpoints" {
  description = "Each region's database endpoint (empty: backup & restore's standby until a restore)."
  value = {
    (var.primary.aws_region) = module.database_primary.endpoint_host
    (var.standby.aws_region) = module.database_standby.endpoint_host
  }
}

output "route_health_checks" {
  description = "The Route 53 health checks of each region's half of the app record."
  value = {
    (var.primary.aws_region) = module.routing_primary.health_check_id
    (var.standby.aws_region) = module.routing_standby.health_check_id
  }
}

output "arbiter_table" {
  description = "The arbiter (DynamoDB MRSC table; its replica in the primary region)."
  value       = module.state.table_arn
}

output "guard_functions" {
  description = "The guard in each site (none for backup & restore)."
  value = concat(module.failover_primary[*].function_arn, module.failover_standby[*].function_arn,
  module.failover_witness[*].function_arn)
}

output "distribution_domain_name" {
  description = "CloudFront's name (serverless): give it your public name."
  value       = local.serverless ? module.static_primary[0].distribution_domain_name : null
}
