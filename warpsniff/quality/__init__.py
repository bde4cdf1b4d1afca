"""Media quality: the E-model (ITU-T G.107) over the engine's stream counters."""
