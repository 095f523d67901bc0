output "vault_arn" {
  description = "This region's vault (the other region's plan copies into it)."
  value       = aws_backup_vault.this.arn
}
