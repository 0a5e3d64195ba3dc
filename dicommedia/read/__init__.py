"""The read side: listing, extraction and (in send.py) network import of media opened with ``open_media``."""
