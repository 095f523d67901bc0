# Per region: `<aws region>.<domain>`, and this region's half of `<domain>` (a failover or a
# latency record), owned here and never edited by the engine. The record's health check asks
# this region's own entry point, so DNS follows the write lease (failover: /health/route answers
# 200 only while this region holds the arbiter's write lease) or the region's health (latency:
# /health/deep) on Route 53's data plane: no region, and no engine call to Route 53, is needed
# for DNS to follow. Also `health.<domain>` (the /health-check API), latency-routed while the
# region's app answers at all (/health).

locals {
  path = var.routing == "latency" ? "/health/deep" : "/health/route"
}

resource "aws_route53_health_check" "route" {
  type              = "HTTPS"
  fqdn              = var.region_host
  port              = 443
  resource_path     = local.path
  request_interval  = var.check_interval_s
  failure_threshold = var.failure_threshold
  tags              = { Name = "${var.app_name}-${var.label}-route" }
}

resource "aws_route53_record" "region" {
  zone_id = var.hosted_zone_id
  name    = var.region_host
  type    = "A"
  alias {
    name                   = var.entry_alias.dns_name
    zone_id                = var.entry_alias.zone_id
    evaluate_target_health = false
  }
}

resource "aws_route53_record" "app" {
  zone_id         = var.hosted_zone_id
  name            = var.domain
  type            = var.record_type == "cname" ? "CNAME" : "A"
  set_identifier  = var.label
  health_check_id = aws_route53_health_check.route.id
  # a CNAME carries its own TTL (clients follow a failover within it); an alias answers with
  # its target's (an ALB's 60 s)
  ttl     = var.record_type == "cname" ? var.ttl_s : null
  records = var.record_type == "cname" ? [var.shared_alias.dns_name] : null

  dynamic "alias" {
    for_each = var.record_type == "alias" ? [1] : []
    content {
      name                   = var.shared_alias.dns_name
      zone_id                = var.shared_alias.zone_id
      evaluate_target_health = true
    }
  }

  dynamic "failover_routing_policy" {
    for_each = var.routing == "failover" ? [1] : []
    content {
      type = var.role == "primary" ? "PRIMARY" : "SECONDARY"
    }
  }

  dynamic "latency_routing_policy" {
    for_each = var.routing == "latency" ? [1] : []
    content {
      region = var.aws_region
    }
  }
}

resource "aws_route53_health_check" "alive" {
  type              = "HTTPS"
  fqdn              = var.region_host
  port              = 443
  resource_path     = "/health"
  request_interval  = 30
  failure_threshold = 3
  tags              = { Name = "${var.app_name}-${var.label}-alive" }
}

resource "aws_route53_record" "health" {
  zone_id         = var.hosted_zone_id
  name            = var.health_host
  type            = "A"
  set_identifier  = var.label
  health_check_id = aws_route53_health_check.alive.id

  alias {
    name                   = var.health_alias.dns_name
    zone_id                = var.health_alias.zone_id
    evaluate_target_health = false
  }

  latency_routing_policy {
    region = var.aws_region
  }
}
