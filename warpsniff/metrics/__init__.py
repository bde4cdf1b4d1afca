"""Publishing: per-call aggregation, windowed KPIs, Prometheus collectors."""
