"""SIP correlation: transport framing, SDP, and calls built from dialogs."""
