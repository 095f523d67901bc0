# What each strategy allows (the topology's rules, as config.py states them): the shared
# variables' validations read the row of var.strategy, which each root pins (roots/<strategy>).

locals {
  strategy_rules = {
    "pilot-light" = {
      standby_capacity = "zero", standby_text = "0 while standby"
      compute          = ["ec2"], database = ["rds", "aurora-global"], routing = ["failover"]
    }
    "warm-standby" = {
      standby_capacity = "part", standby_text = "more than 0 and less than capacity"
      compute          = ["ec2", "lambda"], database = ["rds", "aurora-global"], routing = ["failover"]
    }
    "active-active" = {
      standby_capacity = "full", standby_text = "equal to capacity"
      compute          = ["lambda"], database = ["rds", "aurora-global"]
      routing          = ["failover", "latency"]
    }
    "backup-restore" = {
      standby_capacity = "zero", standby_text = "0 while standby"
      compute          = ["ec2"], database = ["rds"], routing = ["failover"]
    }
  }
}
