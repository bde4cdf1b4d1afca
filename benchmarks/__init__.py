"""Benchmark tooling for warpsniff: a deterministic SIP/RTP capture generator
(`benchmarks.synth`), the peers warpsniff is measured against (`ref_loop.c`,
`py_loop`, tshark) and the runner (`python -m benchmarks.run`)."""
