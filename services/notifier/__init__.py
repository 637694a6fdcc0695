"""The notifier stage: delivers alerts to subscribers (webhooks; Slack comes with issue 6)."""
