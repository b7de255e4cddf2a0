"""The app limiter (G35-G38): limits, RateLimit headers, sustained-429 alerts."""
