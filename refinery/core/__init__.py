"""Plain data and vocabulary: models, statuses, errors, target tags. Imports nothing of ours."""
