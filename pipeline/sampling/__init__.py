"""Flow-matching schedules, guidance, segment planning and the multi-segment sampler loop."""
