"""Monitoring: request ids, health checks and (later) metrics and the staff dashboard."""
