"""A fake SMS gateway speaking Twilio's Messages API, for development and tests: like the Withings
sandbox it imports nothing of ours, and only config, demo, tests and bench import it."""
