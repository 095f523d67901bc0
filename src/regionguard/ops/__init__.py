"""Operations: Prometheus metrics, the live status page, execution reports, readiness."""
