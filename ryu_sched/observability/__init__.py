"""What operators see: Prometheus metrics on their own listener, and the operator page."""
