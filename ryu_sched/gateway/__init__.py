"""Gateway health, echo and fencing (issue 12)."""
