"""The media node: a Storage and Media Creation Management SCP that turns what it receives into discs."""
