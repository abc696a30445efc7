"""Framework integrations: exception handlers rendering problem+json."""
