"""The selected sound: its panel and the audio output."""
