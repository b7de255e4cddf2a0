"""The one alert path."""
