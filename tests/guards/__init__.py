"""Edge guards: timeout, body limit, security headers."""
