# The active-active root: `regionguard synth --format terraform` writes this file next to the
# shared root's (../../shared_root: main.tf, variables.tf, strategies.tf, outputs.tf,
# versions.tf), which are the same for every strategy.

variable "strategy" {
  description = "The topology's strategy: this root builds active-active."
  type        = string
  validation {
    condition     = var.strategy == "active-active"
    error_message = "This root module builds strategy active-active; use the root of your topology's strategy (regionguard synth --format terraform picks it)."
  }
}
