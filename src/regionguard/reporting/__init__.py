"""Report building blocks shared by the drill and plan-execution reports: inline SVG only."""
