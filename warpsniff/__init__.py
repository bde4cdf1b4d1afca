"""warpsniff: SIP/RTP analyzer with a native capture engine."""

__version__ = "0.1.0"
