output "health_check_id" {
  description = "The check of this region's half of the app record."
  value       = aws_route53_health_check.route.id
}
