variable "label" {
  description = "The topology's name of this region (east): the records' set identifier."
  type        = string
}

variable "aws_region" {
  description = "This region's AWS Region (latency records)."
  type        = string
}

variable "app_name" {
  description = "The app's name (health check tags)."
  type        = string
}

variable "role" {
  description = "The region's home role: PRIMARY or SECONDARY half of the failover record."
  type        = string
  validation {
    condition     = contains(["primary", "standby"], var.role)
    error_message = "role must be \"primary\" or \"standby\"."
  }
}

variable "routing" {
  description = "failover (one region serves; PRIMARY/SECONDARY records on /health/route) or latency (active-active; both serve; /health/deep)."
  type        = string
  validation {
    condition     = contains(["failover", "latency"], var.routing)
    error_message = "routing must be \"failover\" or \"latency\"."
  }
}

variable "hosted_zone_id" {
  description = "The public hosted zone of domain."
  type        = string
}

variable "domain" {
  description = "The app's public name: this module owns this region's half of its record."
  type        = string
}

variable "region_host" {
  description = "This region's own name (<aws region>.<domain>)."
  type        = string
}

variable "health_host" {
  description = "The /health-check API's name (health.<domain>)."
  type        = string
}

variable "entry_alias" {
  description = "The alias target of region_host (the ALB or the API's regional domain)."
  type        = object({ dns_name = string, zone_id = string })
}

variable "shared_alias" {
  description = "The alias target of this region's half of domain."
  type        = object({ dns_name = string, zone_id = string })
}

variable "health_alias" {
  description = "The alias target of this region's half of health_host."
  type        = object({ dns_name = string, zone_id = string })
}

variable "record_type" {
  description = "cname (the record's own TTL) or alias (its target's TTL)."
  type        = string
  validation {
    condition     = contains(["cname", "alias"], var.record_type)
    error_message = "record_type must be \"cname\" or \"alias\"."
  }
}

variable "ttl_s" {
  description = "The CNAME record's TTL (unused by an alias)."
  type        = number
}

variable "check_interval_s" {
  description = "Route 53's RequestInterval: 10 (fast) or 30 seconds."
  type        = number
  validation {
    condition     = contains([10, 30], var.check_interval_s)
    error_message = "check_interval_s must be 10 or 30 (Route 53's request intervals)."
  }
}

variable "failure_threshold" {
  description = "Route 53's FailureThreshold: consecutive failures before a check is unhealthy."
  type        = number
  validation {
    condition     = var.failure_threshold >= 1 && var.failure_threshold <= 10
    error_message = "failure_threshold must be 1..10."
  }
}
